"""Change points in one cell's history: where its figure stepped, whether it drifted, or
whether its history is too noisy to say.

The fit is asv's published step detection (`asv.step_detect.detect_steps`: a piecewise
constant fit by weighted L1 with an automatic penalty), with asv's data weights: 2 / the
width of each run's CI of the figure (a run measured with a wide CI counts less; runs
measured in several processes carry CIs that span them). What it fits is then read with
these rules, each stated where it is applied:

- too short: fewer than MIN_RUNS runs, nothing is judged;
- unstable: the run-to-run noise within the fitted levels (1.4826 x the median absolute
  difference of consecutive runs / sqrt(2), relative: the first-difference MAD estimator)
  exceeds half of `min_effect`, so a step of `min_effect` cannot be told from this cell's
  noise: no step is reported, the cell is listed apart;
- outlier: a run further from both its neighbours than `min_effect` and three times the
  run-to-run noise, while the neighbours agree within `min_effect`, is one bad run: it is
  left out of the fit (weight 0, which asv reads as a missing point), never two steps;
- step: two consecutive levels (outliers removed) apart by more than `min_effect`; a new
  level of one run at the end is a step `unconfirmed` until a second run repeats it;
- drift: no step, but a monotonic trend (Mann-Kendall's test, p < 0.01) whose Theil-Sen
  line moves by more than `min_effect` from the first run to the last, with the runs
  close to that line (small steps all one way, or a slope).

Values are oriented so that higher is worse (a quality or a throughput is negated before
the fit), so "worse" always means a regression."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MIN_RUNS = 4
UNSTABLE_FRACTION = 0.5  # of min_effect


@dataclass(frozen=True)
class Level:
    start: int          # first run (index into the series), inclusive
    end: int            # last run, exclusive
    value: float        # the fitted level, in the figure's own units and sign
    spread: float       # asv's L1 error estimate per run, relative to the level


@dataclass(frozen=True)
class Change:
    index: int          # the first run at the new level
    before: float
    after: float
    change: float       # after / before - 1
    worse: bool
    confirmed: bool     # the new level holds for at least two runs


@dataclass
class Verdict:
    kind: str                           # too short | unstable | stable | step | drift
    levels: list[Level] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    outliers: list[int] = field(default_factory=list)
    spread: float | None = None         # typical relative spread around the levels
    drift: float | None = None          # kind drift: how much worse the last level is than
    #                                     the first, relative (negative: better)

    @property
    def regressed(self) -> bool:
        """The latest level is worse than the one before it (a step or a drift)."""
        if self.kind == "step":
            return self.changes[-1].worse and self.changes[-1].index == self.levels[-1].start
        return self.kind == "drift" and (self.drift or 0) > 0


def weights(ci_low: list, ci_high: list) -> list | None:
    """asv's data weights, 2 / CI width (None where a run has no CI)."""
    out = [2.0 / (hi - lo) if lo is not None and hi is not None and hi > lo else None
           for lo, hi in zip(ci_low, ci_high)]
    return out if any(w is not None for w in out) else None


def fit_levels(values: list[float], w: list | None) -> list[Level]:
    from asv.step_detect import detect_steps

    levels = []
    for left, right, value, _, err in detect_steps(list(values), w):
        levels.append(Level(left, right, value, err / abs(value) if value else math.inf))
    return levels


def _worse_by(a: float, b: float) -> float:
    """How much worse b is than a, relative to a, on oriented values (higher is worse):
    positive when worse. (b - a) / |a| keeps the sign right for negated figures."""
    return (b - a) / abs(a) if a else math.inf


def _ratio(a: float, b: float) -> float:
    return b / a - 1 if a else math.inf


def _spread(values: list[float], fitted: list[float], skip: set[int]) -> float:
    """Robust relative spread of the runs around a fit: 1.4826 x the median absolute
    residual relative to the fitted value (the MAD's estimate of one standard deviation),
    so a single bad run does not make a history look noisy."""
    residuals = sorted(abs(v - f) / abs(f) if f else math.inf
                       for k, (v, f) in enumerate(zip(values, fitted)) if k not in skip)
    return 1.4826 * residuals[len(residuals) // 2] if residuals else math.inf


def _mad_noise(diffs: list[float], levels: list[float]) -> float:
    """1.4826 x the median absolute consecutive difference / sqrt(2), over the median
    level: the first-difference MAD estimate of one run's noise, relative."""
    middle = sorted(abs(v) for v in levels)[len(levels) // 2] if levels else 0.0
    if not diffs or not middle:
        return math.inf
    return 1.4826 * sorted(diffs)[len(diffs) // 2] / math.sqrt(2) / middle


def _noise(values: list[float], skip: set[int]) -> float:
    """The run-to-run noise, relative (the first-difference MAD estimator: a step moves
    one difference only, so it barely counts, and unlike residuals around a fit it does
    not vanish when the fit follows every run)."""
    kept = [v for k, v in enumerate(values) if k not in skip]
    return _mad_noise([abs(b - a) for a, b in zip(kept, kept[1:])], kept)


def _noise_within(values: list[float], levels: list[Level], skip: set[int]) -> float:
    """_noise over the consecutive pairs inside each fitted level (a step's own
    difference is not noise); over all runs when no level holds two."""
    diffs, kept = [], []
    for lv in levels:
        run = [values[k] for k in range(lv.start, lv.end) if k not in skip]
        diffs += [abs(b - a) for a, b in zip(run, run[1:])]
        kept += run
    return _mad_noise(diffs, kept) if diffs else _noise(values, skip)


def _far_runs(values: list[float], fitted: list[float], min_effect: float) -> list[int]:
    """Runs further from the fit than both min_effect and three times the history's own
    run-to-run noise: single bad runs (a history that is noisy throughout has none)."""
    bound = max(min_effect, 3 * _noise(values, set()))
    return [k for k, (v, f) in enumerate(zip(values, fitted)) if abs(_worse_by(f, v)) > bound]


def _trend(values: list[float]) -> tuple[float, float, list[float]]:
    """Mann-Kendall's test (Kendall's tau of value against run order) and the Theil-Sen
    line: (p value, how much worse the line's end is than its start, the line)."""
    from scipy.stats import kendalltau, theilslopes

    x = list(range(len(values)))
    p = float(kendalltau(x, values).pvalue)
    slope, intercept, _, _ = theilslopes(values, x)
    line = [intercept + slope * k for k in x]
    return p, _worse_by(line[0], line[-1]), line


TREND_P = 0.01  # Mann-Kendall significance for a drift


def analyze(values: list[float], ci_low: list | None = None, ci_high: list | None = None,
            higher_is_better: bool = False, min_effect: float = 0.10) -> Verdict:
    """The verdict on one cell's series, in run order (oldest first)."""
    if len(values) < MIN_RUNS:
        return Verdict("too short")
    sign = -1.0 if higher_is_better else 1.0
    oriented = [sign * v for v in values]
    # single bad runs: a run far from both neighbours (beyond min_effect and three times
    # the run-to-run noise) while they agree; the fit leaves them out (weight 0 is a
    # missing point to asv), so one bad run is never two steps. The last run is not
    # judged so: a new level seen once is a step not yet confirmed.
    bound = max(min_effect, 3 * _noise(oriented, set()))
    outliers = {k for k in range(1, len(oriented) - 1)
                if abs(_worse_by(oriented[k - 1], oriented[k + 1])) <= min_effect
                and abs(_worse_by(oriented[k - 1], oriented[k])) > bound
                and abs(_worse_by(oriented[k + 1], oriented[k])) > bound}
    w = weights(ci_low, ci_high) if ci_low and ci_high else None
    if outliers:
        w = [0.0 if k in outliers else (w[k] if w else 1.0) for k in range(len(oriented))]
    levels = fit_levels(oriented, w)
    back = [Level(lv.start, lv.end, sign * lv.value, lv.spread) for lv in levels]
    kept = levels
    # the noise within levels: consecutive differences inside each level, so a step
    # between levels is not counted as noise
    spread = _noise_within(oriented, levels, outliers)
    limit = UNSTABLE_FRACTION * min_effect
    changes = []
    for prev, cur in zip(kept, kept[1:]):
        worse = _worse_by(prev.value, cur.value)
        if abs(worse) > min_effect:
            changes.append(Change(cur.start, sign * prev.value, sign * cur.value,
                                  _ratio(sign * prev.value, sign * cur.value), worse > 0,
                                  cur.end - cur.start >= 2))
    if changes and spread <= limit:
        return Verdict("step", back, changes, sorted(outliers), spread)
    p, total, line = _trend(oriented)
    off_line = _far_runs(oriented, line, min_effect)
    if p < TREND_P and abs(total) > min_effect and _spread(oriented, line, set(off_line)) <= limit:
        # small steps all one way, or a slope: how much worse the end is than the start
        return Verdict("drift", back, [], off_line, _spread(oriented, line, set(off_line)),
                       drift=total)
    if spread > limit:
        return Verdict("unstable", back, spread=spread)
    return Verdict("stable", back, [], sorted(outliers), spread)

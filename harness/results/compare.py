"""`harness compare BASELINE CANDIDATE`: the regression gate between two runs.

`compare_runs` is pure over plain data so it can be golden-tested on fixtures. A latency
change counts only when Mann-Whitney U on the raw samples is significant AND the p50 ratio
passes a minimum effect (asv's rule, STYLE.md 7): significance alone flags 1% drifts on
long runs, an effect alone flags noise on short ones. Where both runs measured the cell in
several processes (`measure.processes`), their stored p50 CIs, which span the processes,
must not overlap either (asv's third test): Mann-Whitney treats every sample as independent
and cannot see that whole processes drift apart. For single-process cells the CI says no
more than the test already does, so it is not used."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, field

import duckdb
import numpy as np

# (model, method, format, device, batch_size, shape); batch_size None for non-ok cells,
# shape '' where the model has no named axes (a 5-tuple reads as shape '')
Key = tuple


@dataclass(frozen=True)
class Thresholds:
    p_value: float = 0.002             # asv's default significance level
    min_latency_effect: float = 0.10   # p50 ratio beyond 1.10 (or below 1/1.10)
    max_accuracy_drop_points: float = 0.5  # top-1 (or fidelity agreement) percentage points
    max_memory_growth: float = 0.10    # relative growth of peak RSS


@dataclass
class CellData:
    samples_ms: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    latency_p50_ms: float | None = None
    accuracy: float | None = None      # the task's quality: top-1, or a fidelity cosine
    accuracy_kind: str | None = None   # its metric ('top1', 'fidelity_cosine_min', ...)
    peak_rss_mb: float | None = None
    status: str = "ok"
    error: str | None = None
    ci_ms: tuple[float, float] | None = None  # stored 95% CI of the p50
    processes: int = 1                        # worker processes the samples come from


@dataclass(frozen=True)
class Finding:
    key: Key
    kind: str                          # status | latency | accuracy | memory
    baseline: float | str | None
    candidate: float | str | None
    change: float | None = None        # latency, memory: candidate/baseline - 1; accuracy: points
    p_value: float | None = None       # latency only
    note: str = ""


@dataclass
class Comparison:
    regressions: list[Finding]
    improvements: list[Finding]
    new: list[Finding]                 # cells only the candidate has (kind 'status')
    unchanged_count: int
    thresholds: Thresholds
    # --confirm: latency findings the interleaved re-measurement did not reproduce (None:
    # no re-measurement was asked for)
    unconfirmed: list[Finding] | None = None

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0


def shape_of(key: Key) -> str:
    return key[5] if len(key) > 5 else ""


def _order(key: Key) -> tuple:
    return (*key[:4], -1 if key[4] is None else key[4], shape_of(key))


def _any_batch(key: Key) -> Key:
    return (*key[:4], None, *key[5:6])


def _side(ratio: float, limit: float) -> str | None:
    # Multiplicative symmetry: 1.1x slower and 1.1x faster are the same size of change.
    # Rounding keeps an exact +10% (110/100 is 1.1000000000000001) within a 10% limit.
    return ("regression" if round(ratio - 1, 9) > limit else
            "improvement" if round(1 / ratio - 1, 9) > limit else None)


def _latency(key: Key, b: CellData, c: CellData, t: Thresholds) -> tuple[str, Finding] | None:
    if not (b.latency_p50_ms and c.latency_p50_ms and len(b.samples_ms) and len(c.samples_ms)):
        return None  # without raw samples there is no significance, so no verdict
    ratio = c.latency_p50_ms / b.latency_p50_ms
    side = _side(ratio, t.min_latency_effect)
    if side is None:
        return None  # effect too small: skip the test, it cannot change the verdict
    from scipy.stats import mannwhitneyu  # lazy: scipy costs ~0.5 s to import

    if (min(b.processes, c.processes) > 1 and b.ci_ms and c.ci_ms
            and b.ci_ms[0] <= c.ci_ms[1] and c.ci_ms[0] <= b.ci_ms[1]):
        return None  # the CIs overlap: within what the runs' own processes vary by
    p = float(mannwhitneyu(b.samples_ms, c.samples_ms, alternative="two-sided").pvalue)
    if p >= t.p_value:
        return None
    return side, Finding(key, "latency", b.latency_p50_ms, c.latency_p50_ms, ratio - 1, p,
                         f"n={len(b.samples_ms)}/{len(c.samples_ms)}")


def _accuracy(key: Key, b: CellData, c: CellData, t: Thresholds) -> tuple[str, Finding] | None:
    # Top-1 and fidelity agreement measure different things: compare only like with like.
    if b.accuracy is None or c.accuracy is None or b.accuracy_kind != c.accuracy_kind:
        return None
    delta = round(100 * (c.accuracy - b.accuracy), 9)  # so 97.5 -> 97.0 is exactly 0.5
    side = ("regression" if -delta > t.max_accuracy_drop_points else
            "improvement" if delta > t.max_accuracy_drop_points else None)
    return side and (side, Finding(key, "accuracy", b.accuracy, c.accuracy, delta,
                                   note=b.accuracy_kind or ""))


def _memory(key: Key, b: CellData, c: CellData, t: Thresholds) -> tuple[str, Finding] | None:
    if not (b.peak_rss_mb and c.peak_rss_mb):
        return None
    ratio = c.peak_rss_mb / b.peak_rss_mb
    side = _side(ratio, t.max_memory_growth)
    return side and (side, Finding(key, "memory", b.peak_rss_mb, c.peak_rss_mb, ratio - 1))


def compare_runs(baseline: dict[Key, CellData], candidate: dict[Key, CellData],
                 t: Thresholds = Thresholds()) -> Comparison:
    """Every baseline cell against the candidate's. A non-ok cell (batch_size None) stands
    for all batch sizes of that cell on the other side."""
    found: dict[str, list[Finding]] = {"regression": [], "improvement": []}
    unchanged = 0
    for key in sorted(baseline, key=_order):
        b = baseline[key]
        c = candidate.get(key) or candidate.get(_any_batch(key))
        if b.status != "ok":
            # Nothing to measure against; a candidate that fixed it is reported below.
            unchanged += c is not None and c.status != "ok"
            continue
        if c is None or c.status != "ok":
            # A cell the gate can no longer vouch for is a regression, whatever the reason.
            found["regression"].append(Finding(
                key, "status", "ok", c.status if c else "missing",
                note=((c.error or "").strip().splitlines() or [""])[0] if c else ""))
            continue
        hits = [h for h in (_latency(key, b, c, t), _accuracy(key, b, c, t),
                            _memory(key, b, c, t)) if h]
        for side, finding in hits:
            found[side].append(finding)
        unchanged += not hits
    prefixes = {k[:4] for k in baseline}
    new = []
    for key in sorted(candidate, key=_order):
        if key in baseline:
            continue
        c, b = candidate[key], baseline.get(_any_batch(key))
        if b is not None:  # the baseline failed this cell at every batch size
            if c.status == "ok":
                found["improvement"].append(Finding(key, "status", b.status, "ok"))
        elif key[:4] not in prefixes or key[4] is not None:
            # A new cell, or a batch size the baseline did not measure. A non-ok cell of a
            # known prefix was already matched to the baseline's batch sizes above.
            new.append(Finding(key, "status", "missing", c.status))
    return Comparison(found["regression"], found["improvement"], new, unchanged, t)


# loading ------------------------------------------------------------------------------------
_OK_SQL = """
SELECT model, method, format, device, batch_size, cell_id, latency_p50_ms, quality,
       quality_metric, peak_rss_mb, latency_p50_ci_low_ms, latency_p50_ci_high_ms,
       coalesce(processes, 1), coalesce(shape, '')
FROM results WHERE run_id = $run AND status = 'ok' AND batch_size IS NOT NULL
    AND ($emulated OR NOT emulated)"""
# One group per (cell, batch size, shape), in the same order as the flat sample column
# below, so np.split can cut it without a query per cell.
_GROUPS_SQL = """SELECT cell_id, batch_size, coalesce(shape, ''), count(*) FROM latency_samples
WHERE run_id = $run GROUP BY ALL ORDER BY cell_id, batch_size, coalesce(shape, '')"""
_SAMPLES_SQL = """SELECT latency_ms FROM latency_samples WHERE run_id = $run
ORDER BY cell_id, batch_size, coalesce(shape, ''), iteration"""


def load_run(con: duckdb.DuckDBPyConnection, run_id: str,
             include_emulated: bool = False) -> dict[Key, CellData]:
    """The run's ok cells; those measured on an emulated device only when asked for (their
    timings are the emulating host's)."""
    params = {"run": run_id}
    groups = con.execute(_GROUPS_SQL, params).fetchall()
    flat = con.execute(_SAMPLES_SQL, params).fetchnumpy()["latency_ms"]
    parts = np.split(np.asarray(flat, dtype=np.float64),
                     np.cumsum([n for *_, n in groups])[:-1]) if groups else []
    samples = {(cid, bs, sh): part for (cid, bs, sh, _), part in zip(groups, parts)}
    run: dict[Key, CellData] = {}
    for (model, method, fmt, device, bs, cid, p50, quality, metric, rss, lo, hi, procs,
         shape) in con.execute(_OK_SQL, params | {"emulated": include_emulated}).fetchall():
        # the task's quality (top-1 with labels, a fidelity cosine without): compared only
        # like with like (the same metric on both sides)
        run[(model, method, fmt, device, bs, shape)] = CellData(
            samples.get((cid, bs, shape), np.empty(0)), p50, quality, metric, rss,
            ci_ms=(lo, hi) if lo is not None and hi is not None else None, processes=procs)
    for model, method, fmt, device, status, error in con.execute(
            "SELECT model, method, format, device, status, error FROM cells "
            "WHERE run_id = $run AND status <> 'ok'", params).fetchall():
        run[(model, method, fmt, device, None, "")] = CellData(status=status, error=error)
    return run


# rendering ----------------------------------------------------------------------------------
def _cell(key: Key) -> str:
    return "/".join(key[:4])


def _value(kind: str, v) -> str:
    if v is None or isinstance(v, str):
        return "-" if v is None else v
    return {"latency": f"{v:.3f} ms", "memory": f"{v:.1f} MB", "accuracy": f"{100 * v:.2f}%",
            "change": f"{v:+.1%}", "points": f"{v:+.2f} pts"}[kind]


def _table(title: str, findings: list[Finding]) -> list[str]:
    if not findings:
        return [f"### {title}: none", ""]
    lines = [f"### {title} ({len(findings)})", "",
             "| cell | batch | kind | baseline | candidate | change | p | note |",
             "|---|---:|---|---:|---:|---:|---:|---|"]
    for f in findings:
        batch = ("all" if f.key[4] is None else str(f.key[4])) + (
            f" {shape_of(f.key)}" if shape_of(f.key) else "")
        p = "-" if f.p_value is None else f"{f.p_value:.1e}"
        change = _value("points" if f.kind == "accuracy" else "change", f.change)
        lines.append(f"| `{_cell(f.key)}` | {batch} | {f.kind} | {_value(f.kind, f.baseline)} | "
                     f"{_value(f.kind, f.candidate)} | {change} | {p} | "
                     f"{f.note.replace('|', '/')} |")
    return lines + [""]


def to_markdown(cmp: Comparison, baseline_id: str, candidate_id: str,
                db: str | None = None) -> str:
    t = cmp.thresholds
    verdict = f"**{len(cmp.regressions)} regression(s)**" if cmp.regressions else "no regression"
    lines = [f"## harness compare: `{baseline_id}` -> `{candidate_id}`", "",
             f"{verdict}, {len(cmp.improvements)} improvement(s), {cmp.unchanged_count} "
             f"unchanged, {len(cmp.new)} new. Latency needs Mann-Whitney p < {t.p_value:g} "
             f"and a p50 change beyond {t.min_latency_effect:.0%}; accuracy "
             f"{t.max_accuracy_drop_points:g} points; peak RSS {t.max_memory_growth:.0%}.", ""]
    if cmp.unconfirmed is not None:
        lines += [f"Latency findings were re-measured here, baseline and candidate artifacts "
                  f"side by side in alternating blocks (`--confirm`); "
                  f"{len(cmp.unconfirmed)} did not reproduce.", ""]
    lines += _table("Regressions", cmp.regressions) + _table("Improvements", cmp.improvements)
    if cmp.unconfirmed:
        lines += _table("Not reproduced on re-measurement (not counted)", cmp.unconfirmed)
    if cmp.new:
        lines += [f"### New cells ({len(cmp.new)})", ""]
        lines += [f"- `{_cell(f.key)}` batch {'all' if f.key[4] is None else f.key[4]}"
                  f"{' ' + shape_of(f.key) if shape_of(f.key) else ''}: "
                  f"{f.candidate}" for f in cmp.new] + [""]
    lines.append(f"{cmp.unchanged_count} cell(s) unchanged.")
    latency = [f for f in cmp.regressions + cmp.improvements if f.kind == "latency"]
    if latency and cmp.unconfirmed is None and db:
        lines += ["", "Re-measure the latency findings here, both runs' artifacts side by "
                  f"side: `harness compare {baseline_id} {candidate_id} --confirm --db {db}`"]
    return "\n".join(lines) + "\n"


def _round(v, digits: int = 6):
    # Six significant digits is finer than any threshold; it keeps golden files stable
    # across last-bit differences in libm.
    return float(f"{v:.{digits}g}") if isinstance(v, float) and math.isfinite(v) else v


def _finding_json(f: Finding) -> dict:
    return {"model": f.key[0], "method": f.key[1], "format": f.key[2], "device": f.key[3],
            "batch_size": f.key[4], "shape": shape_of(f.key), "kind": f.kind,
            "baseline": _round(f.baseline),
            "candidate": _round(f.candidate), "change": _round(f.change),
            "p_value": _round(f.p_value, 4), "note": f.note}


def to_json(cmp: Comparison, baseline_id: str | None = None,
            candidate_id: str | None = None) -> dict:
    return {"baseline": baseline_id, "candidate": candidate_id, "exit_code": cmp.exit_code,
            "thresholds": asdict(cmp.thresholds),
            "counts": {"regressions": len(cmp.regressions), "improvements": len(cmp.improvements),
                       "unchanged": cmp.unchanged_count, "new": len(cmp.new)},
            "regressions": [_finding_json(f) for f in cmp.regressions],
            "improvements": [_finding_json(f) for f in cmp.improvements],
            "new": [_finding_json(f) for f in cmp.new]} | (
        {} if cmp.unconfirmed is None else
        {"unconfirmed": [_finding_json(f) for f in cmp.unconfirmed]})


def confirm_findings(cmp: Comparison, cells: dict[Key, dict | str], blocks: int) -> None:
    """Keep a latency finding only if the side-by-side re-measurement of its two artifacts
    still passes the minimum effect in the same direction (harness/confirm.py)."""
    from dataclasses import replace

    from harness.results.confirm import remeasure

    cmp.unconfirmed = []
    for side, findings in (("regression", cmp.regressions), ("improvement", cmp.improvements)):
        kept = []
        for f in findings:
            if f.kind != "latency":
                kept.append(f)
                continue
            again = remeasure(cells[f.key], blocks)
            f = replace(f, note=f"{f.note}; {again.note()}")
            reproduced = (again.ratio is None  # cannot refute it here: it stands
                          or _side(again.ratio, cmp.thresholds.min_latency_effect) == side)
            (kept if reproduced else cmp.unconfirmed).append(f)
        findings[:] = kept


def run_compare(db_path: str, baseline_ref: str, candidate_ref: str, fmt: str = "md",
                thresholds: Thresholds | None = None, out=None, confirm_blocks: int = 0,
                history_runs: int = 0, include_emulated: bool = False) -> int:
    """The CLI's body: 0 no regression, 1 a regression; InputError (exit 2) propagates."""
    from harness.results.runref import resolve_run
    from harness.results.store import open_read_only

    out = out or sys.stdout
    con = open_read_only(db_path)
    try:
        base_id = resolve_run(con, baseline_ref, db=str(db_path))
        cand_id = resolve_run(con, candidate_ref, db=str(db_path))
        baseline = load_run(con, base_id, include_emulated)
        candidate = load_run(con, cand_id, include_emulated)
        cmp = compare_runs(baseline, candidate, thresholds or Thresholds())
        if history_runs:
            from harness.results.history_gate import annotate
            annotate(con, cmp, cand_id, history_runs, cmp.thresholds.min_latency_effect)
        cells = {}
        if confirm_blocks:
            from agents.devices import detect_kinds
            from harness.results.confirm import cells_for

            kinds = detect_kinds()
            cells = {f.key: cells_for(con, base_id, cand_id, f.key, kinds)
                     for f in cmp.regressions + cmp.improvements if f.kind == "latency"}
    finally:
        con.close()  # not held while measuring: a sweep may write meanwhile
    if confirm_blocks:
        confirm_findings(cmp, cells, confirm_blocks)
    if fmt == "json":
        json.dump(to_json(cmp, base_id, cand_id), out, indent=2)
        out.write("\n")
    else:
        out.write(to_markdown(cmp, base_id, cand_id, str(db_path)))
    return cmp.exit_code

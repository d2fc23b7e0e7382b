"""`harness report --history [--tag TAG]`: the history page, one self-contained HTML file
like the run report. Per model, small multiples: each cell's figure over the runs with its
CI band, the fitted levels, change points marked (red worse, green better) and outlier runs
crossed; below, every change point with what changed and its repro command; unstable cells
listed apart."""

from __future__ import annotations

from collections import defaultdict
from html import escape
from pathlib import Path

import duckdb

from harness.errors import InputError
from harness.results import history
from harness.results.history_cli import describe, explanations
from harness.results.plots import _grid, _message, _png

WORSE, BETTER, LEVEL = "#c62828", "#2e7d32", "#555555"


def small_multiples(cells: list[history.CellHistory], metric: str, title: str,
                    min_effect: float = 0.10) -> bytes:
    if not cells:
        return _message("no cell of this model has a history", title)
    unit = history.METRICS[metric][1]
    fig, axes = _grid(len(cells), 3, 4.4, 2.8)
    for ax, h in zip(axes, cells):
        x = list(range(len(h.points)))
        y = [p.value for p in h.points]
        lows = [p.ci_low if p.ci_low is not None else p.value for p in h.points]
        highs = [p.ci_high if p.ci_high is not None else p.value for p in h.points]
        ax.fill_between(x, lows, highs, color="#90caf9", alpha=0.5, lw=0, label="95% CI")
        ax.plot(x, y, "o-", color="#1565c0", ms=3.5, lw=1)
        v = h.verdict
        if v.kind not in ("unstable", "too short"):
            for lv in v.levels:
                ax.hlines(lv.value, lv.start - 0.3, lv.end - 0.7, colors=LEVEL, lw=2,
                          alpha=0.7)
        for c in v.changes:
            ax.axvline(c.index - 0.5, color=WORSE if c.worse else BETTER, ls="--", lw=1.2)
        for k in v.outliers:
            ax.plot(k, y[k], "x", color="#000000", ms=8)
        # at least +-min_effect around the median: a 1% wobble must not fill the panel
        middle = sorted(y)[len(y) // 2]
        ax.set_ylim(min(min(lows), middle * (1 - min_effect)) * 0.98,
                    max(max(highs), middle * (1 + min_effect)) * 1.02)
        ax.set_xticks(x, [str(k + 1) for k in x], fontsize=7)
        ax.set_xlabel("run (oldest first)", fontsize=8)
        ax.set_ylabel(f"{metric} {unit}".strip(), fontsize=8)
        ax.grid(True, alpha=0.25)
        shape = f" {h.key[5]}" if h.key[5] else ""
        ax.set_title(f"{h.key[1]}/{h.key[2]} {h.key[3]} b{h.key[4]}{shape}\n"
                     f"{describe(h, metric)[:60]}", fontsize=8.5,
                     color=WORSE if v.regressed else "#222222")
    fig.suptitle(title, fontsize=12)
    return _png(fig)


def render(cells: list[history.CellHistory], runs: list[str], metric: str, tag: str | None,
           db: str, min_effect: float) -> str:
    from harness.results.report import CSS, _img, _table

    by_model: dict[str, list] = defaultdict(list)
    for h in cells:
        by_model[h.key[0]].append(h)
    scope = f"tag {tag}" if tag else "all runs"
    parts = [f"<h1>harness history: {escape(metric)} over {len(runs)} runs ({escape(scope)})"
             "</h1>",
             f"<p class=muted>Runs {escape(runs[0])} .. {escape(runs[-1])}, oldest first. "
             f"Steps beyond {min_effect:.0%} are found with asv's step detection weighted by "
             "each run's CI; a cell whose runs spread by more than half of that around their "
             "level is unstable and listed apart, with no step called in it.</p>"]
    regressed = [h for h in cells if h.verdict.regressed]
    parts.append(f"<p><b>{len(regressed)} cell(s) regressed</b> (latest level worse than the "
                 f"one before): {escape(', '.join(h.label for h in regressed) or 'none')}</p>")
    for model, group in by_model.items():
        judged = [h for h in group if h.verdict.kind != "unstable"]
        parts.append(f"<h2>{escape(model)}</h2>")
        parts.append(_img(small_multiples(judged, metric, f"{model}: {metric} per cell",
                                          min_effect), f"history of {model}"))
        rows = []
        for h in judged:
            for e in explanations(h, db):
                rows.append([h.label, str(h.key[4]), f"{e['change']:+.0%}", e["run"],
                             "; ".join(e["what_changed"]), e["repro"]])
        if rows:
            parts.append(_table(["cell", "batch", "change", "at run", "what changed",
                                 "repro"], rows))
        unstable = [h for h in group if h.verdict.kind == "unstable"]
        if unstable:
            parts.append("<h3>Unstable (too noisy to call a step in)</h3>")
            parts.append(_table(["cell", "batch", "shape", "verdict", "values"],
                                [[h.label, str(h.key[4]), h.key[5] or "-",
                                  describe(h, metric),
                                  ", ".join(f"{p.value:.3g}" for p in h.points)]
                                 for h in unstable]))
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            f"<title>harness history</title><style>{CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")


def write_history_report(con: duckdb.DuckDBPyConnection, out: Path, *, tag: str | None,
                         db: str, metric: str = "p50", last: int = 30,
                         min_effect: float = 0.10) -> Path:
    runs = history.run_ids(con, tag, last)
    cells = history.load(con, runs, metric)
    history.judge(cells, metric, min_effect)
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render(cells, runs, metric, tag, db, min_effect), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the report: {exc}", file=str(out)) from None
    return out

"""End-of-sweep summary: the best variant per model, device and shape that keeps the fp32
source's quality (within the accuracy budget on labelled data; above the fidelity
threshold of its precision otherwise), and every cell that did not end ok."""

from __future__ import annotations

import duckdb
from rich.console import Console
from rich.table import Table

from harness.results.quality_sql import DROP_PTS, within_budget

ACCURACY_BUDGET_POINTS = 1.0
NAMED_CELLS = 3  # a reason shared by many cells names this many of them

BEST_SQL = f"""
WITH r AS (
    SELECT *, {DROP_PTS} AS drop_pts, {within_budget()} AS keeps_quality
    FROM results
    WHERE run_id = $run AND status = 'ok' AND NOT emulated  -- timings of the host, not the device
      AND batch_size = (SELECT min(batch_size) FROM measurements WHERE run_id = $run)
),
base AS (
    SELECT model, device, shape, min(latency_p50_ms) AS fp32_p50
    FROM r WHERE list_contains($baselines, method) GROUP BY ALL
)
SELECT r.model, r.device, r.method, r.format, r.precision, r.batch_size, r.latency_p50_ms,
       base.fp32_p50 / r.latency_p50_ms AS speedup, r.quality, r.quality_metric,
       r.quality_threshold, r.drop_pts, r.size_bytes, r.parity_suspect, r.shape
FROM r LEFT JOIN base USING (model, device, shape)
WHERE r.keeps_quality
QUALIFY row_number() OVER (PARTITION BY r.model, r.device, r.shape
                           ORDER BY r.latency_p50_ms) = 1
ORDER BY r.model, r.device, r.shape
"""

PROBLEMS_SQL = """
SELECT cell_id, status, error FROM cells
WHERE run_id = $run AND status IN ('failed', 'timeout', 'unavailable') ORDER BY cell_id
"""


def best_rows(con: duckdb.DuckDBPyConnection, run_id: str, baselines: list[str],
              budget: float = ACCURACY_BUDGET_POINTS) -> list[tuple]:
    return con.execute(BEST_SQL, {"run": run_id, "baselines": baselines or [""],
                                  "budget": budget}).fetchall()


def baseline_methods(con: duckdb.DuckDBPyConnection, run_id: str) -> list[str]:
    """Method names (as the run's matrix named them) whose variant is the plain fp32
    source: the results view's is_baseline, the one definition of a baseline."""
    return [m for (m,) in con.execute("SELECT DISTINCT method FROM results WHERE run_id = ? "
                                      "AND is_baseline ORDER BY 1", [run_id]).fetchall()]


def number_text(value, fmt: str = "{:.3f}") -> str:
    """A figure as text, '-' when it was not measured (NULL)."""
    return "-" if value is None else fmt.format(value)


def quality_text(value: float | None, metric: str | None,
                 threshold: float | None = None) -> str:
    """'98.89% top1', or 'cosine 0.9991 (>= 0.9)' for a fidelity metric."""
    if value is None:
        return "-"
    if threshold is None:
        return f"{value:.2%} {metric}"
    name = "cosine" if "cosine" in (metric or "") else metric
    return f"{name} {value:.4f} (>= {threshold:g})"


def _quality_cell(value: float | None, metric: str | None, threshold: float | None,
                  drop: float | None) -> str:
    """'98.61% top1 (-0.56)' (its change against fp32, in points: the column has no
    heading to say 'drop', so the sign says which way), or 'cosine 0.9991 (>= 0.9)'."""
    text = quality_text(value, metric, threshold)
    if threshold is not None or drop is None:
        return text
    return f"{text} ({-drop + 0.0:+.2f})"  # + 0.0: no "-0.00" for no change


def gate_text(drop: float | None, threshold: float | None) -> str:
    return f"{drop:+.2f} pts" if threshold is None and drop is not None else "fidelity"


def print_summary(con: duckdb.DuckDBPyConnection, run_id: str, console: Console) -> None:
    """The best-variant table, readable in an 80-column terminal: a column whose value is
    the same on every row (one device, one batch size, no shapes) goes into the title,
    method and format share a column, and text wraps instead of being cut to '…'."""
    from rich import box

    baselines = baseline_methods(con, run_id)
    rows = best_rows(con, run_id, baselines)
    columns = {  # name -> (values per row, numeric)
        "model": ([f"{r[0]} {r[14]}" if r[14] else r[0] for r in rows], False),
        "device": ([r[1] for r in rows], False),
        "batch": ([str(r[5]) for r in rows], True),
        "variant": ([f"{r[2]} {r[3]}" for r in rows], False),
        "prec": ([r[4] + {True: " !", None: " ?"}.get(r[13], "") for r in rows], False),
        "p50 ms": ([f"{r[6]:.3f}" for r in rows], True),
        "vs fp32": ([f"{r[7]:.2f}x" if r[7] else "-" for r in rows], True),
        "quality": ([_quality_cell(r[8], r[9], r[10], r[11]) for r in rows], False),
        "size MB": ([f"{r[12] / 2**20:.2f}" if r[12] else "-" for r in rows], True),
    }
    same = {name: values[0] for name, (values, _) in columns.items()
            if name in ("device", "batch") and rows and len(set(values)) == 1}
    fixed = ", ".join(f"{name} {value}" for name, value in same.items())
    table = Table(title=f"Best variant per model{'' if 'device' in same else ' and device'} "
                        f"that keeps the fp32 quality (top-1 within "
                        f"{ACCURACY_BUDGET_POINTS:g} point, or cosine to the fp32 outputs "
                        f"at its precision's threshold), run {run_id}"
                        + (f"; {fixed}" if fixed else ""),
                  box=box.SIMPLE_HEAD, pad_edge=False)
    shown = [name for name in columns if name not in same]
    for name in shown:
        values, numeric = columns[name]
        # text wraps between words, never inside one (a model name may fold: it is first)
        words = [len(w) for v in values for w in v.split()] or [1]
        table.add_column(name, justify="right" if numeric else "left", no_wrap=numeric,
                         overflow="fold", min_width=None if name == "model" else max(words))
    for i in range(len(rows)):
        table.add_row(*(columns[name][0][i] for name in shown))
    console.print(table)
    if any(r[13] is not False for r in rows):
        console.print("prec !: parity suspect (the artifact's outputs differ from the "
                      "fp32 source beyond its threshold); ?: parity not checked (no device "
                      "here runs the format)")
    emulated = con.execute("SELECT count(DISTINCT cell_id) FROM results WHERE run_id = ? "
                           "AND status = 'ok' AND emulated", [run_id]).fetchone()[0]
    if emulated:
        console.print(f"{emulated} ok cell(s) ran on an emulated device and are left out of "
                      "this table: their timings are the emulating host's "
                      "(`harness recommend --include-emulated` shows them)")
    problems = con.execute(PROBLEMS_SQL, {"run": run_id}).fetchall()
    if problems:
        console.print(f"[bold red]{len(problems)} cell(s) did not run to the end:[/]")
        for (status, reason), cells in _by_reason(problems).items():
            named = ", ".join(cells[:NAMED_CELLS]) + (
                f" and {len(cells) - NAMED_CELLS} more" if len(cells) > NAMED_CELLS else "")
            what = named if len(cells) == 1 else f"{len(cells)} cells ({named})"
            console.print(f"  {status:<11} {what}: {reason}", markup=False,
                          soft_wrap=True)  # one line per cause, also in a CI log



def _by_reason(problems: list[tuple]) -> dict[tuple[str, str], list[str]]:
    """Cells that did not run, grouped by status and the gist of their error: one line per
    cause (13 cells without a GPU agent are one line, not 13)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for cell_id, status, error in problems:
        groups.setdefault((status, error_gist(error)), []).append(cell_id)
    return groups


def error_gist(error: str | None, lines: int = 3, chars: int = 240) -> str:
    """An error's first lines on one line: a toolchain's first line is often a header
    ("-- Conv-15 with a message:") and the cause is on the next."""
    kept = [line.strip() for line in (error or "").splitlines() if line.strip()]
    return " | ".join(kept[:lines])[:chars]

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
    WHERE run_id = $run AND status = 'ok'
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


def quality_text(value: float | None, metric: str | None,
                 threshold: float | None = None) -> str:
    """'98.89% top1', or 'cosine 0.9991 (>= 0.9)' for a fidelity metric."""
    if value is None:
        return "-"
    if threshold is None:
        return f"{value:.2%} {metric}"
    name = "cosine" if "cosine" in (metric or "") else metric
    return f"{name} {value:.4f} (>= {threshold:g})"


def gate_text(drop: float | None, threshold: float | None) -> str:
    return f"{drop:+.2f} pts" if threshold is None and drop is not None else "fidelity"


def print_summary(con: duckdb.DuckDBPyConnection, run_id: str, console: Console) -> None:
    baselines = baseline_methods(con, run_id)
    table = Table(title=f"Best variant per model and device that keeps the fp32 quality "
                        f"(top-1 within {ACCURACY_BUDGET_POINTS:g} point; without labels, "
                        f"cosine to the fp32 outputs above its precision's threshold), "
                        f"run {run_id}")
    for col in ("model", "device", "shape", "method", "format", "precision", "batch",
                "p50 ms", "vs fp32", "quality", "drop", "size MB"):
        table.add_column(col, justify="right" if col[0].isdigit() or " " in col else "left")
    for (model, device, method, fmt, precision, batch, p50, speedup, quality, metric,
         threshold, drop, size, suspect, shape) in best_rows(con, run_id, baselines):
        parity = {True: " (parity suspect)", None: " (parity not checked)"}.get(suspect, "")
        table.add_row(model, device, shape or "-", method, fmt, precision + parity, str(batch),
                      f"{p50:.3f}", f"{speedup:.2f}x" if speedup else "-",
                      quality_text(quality, metric, threshold), gate_text(drop, threshold),
                      f"{size / 2**20:.2f}" if size else "-")
    console.print(table)
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
    """Cells that did not run, grouped by status and the first line of their error: one
    line per cause (13 cells without a GPU agent are one line, not 13)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for cell_id, status, error in problems:
        first = (error or "").strip().splitlines()[:1]
        groups.setdefault((status, first[0] if first else ""), []).append(cell_id)
    return groups

"""End-of-sweep summary: the best variant per model and device within an accuracy budget,
and every cell that did not end ok."""

from __future__ import annotations

import duckdb
from rich.console import Console
from rich.table import Table

ACCURACY_BUDGET_POINTS = 1.0

BEST_SQL = """
WITH r AS (
    SELECT *,
           100 * coalesce(reference_top1 - accuracy_top1, 1 - fidelity_top1_agreement) AS drop_pts
    FROM results
    WHERE run_id = $run AND status = 'ok'
      AND batch_size = (SELECT min(batch_size) FROM measurements WHERE run_id = $run)
),
base AS (
    SELECT model, device, min(latency_p50_ms) AS fp32_p50
    FROM r WHERE list_contains($baselines, method) GROUP BY ALL
)
SELECT r.model, r.device, r.method, r.format, r.precision, r.batch_size, r.latency_p50_ms,
       base.fp32_p50 / r.latency_p50_ms AS speedup,
       coalesce(r.accuracy_top1, r.fidelity_top1_agreement) AS quality,
       r.accuracy_top1 IS NOT NULL AS labelled, r.drop_pts, r.size_bytes, r.parity_suspect
FROM r LEFT JOIN base USING (model, device)
WHERE r.drop_pts <= $budget
QUALIFY row_number() OVER (PARTITION BY r.model, r.device ORDER BY r.latency_p50_ms) = 1
ORDER BY r.model, r.device
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


def print_summary(con: duckdb.DuckDBPyConnection, run_id: str, console: Console) -> None:
    baselines = baseline_methods(con, run_id)
    table = Table(title=f"Best variant per model and device (accuracy drop <= "
                        f"{ACCURACY_BUDGET_POINTS:g} point), run {run_id}")
    for col in ("model", "device", "method", "format", "precision", "batch", "p50 ms",
                "vs fp32", "top-1", "drop pts", "size MB"):
        table.add_column(col, justify="right" if col[0].isdigit() or " " in col else "left")
    for (model, device, method, fmt, precision, batch, p50, speedup, quality, labelled, drop,
         size, suspect) in best_rows(con, run_id, baselines):
        parity = {True: " (parity suspect)", None: " (parity not checked)"}.get(suspect, "")
        table.add_row(model, device, method, fmt, precision + parity, str(batch),
                      f"{p50:.3f}", f"{speedup:.2f}x" if speedup else "-",
                      f"{quality:.2%}" + ("" if labelled else " fid."), f"{drop:+.2f}",
                      f"{size / 2**20:.2f}" if size else "-")
    console.print(table)
    problems = con.execute(PROBLEMS_SQL, {"run": run_id}).fetchall()
    if problems:
        console.print(f"[bold red]{len(problems)} cell(s) did not run to the end:[/]")
        for cell_id, status, error in problems:
            first = (error or "").strip().splitlines()[:1]
            console.print(f"  {status:<11} {cell_id}: {first[0] if first else ''}", markup=False)

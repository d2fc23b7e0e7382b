"""`harness recommend`: what to ship, per model and device, from the results database.

The best ok variant by the chosen metric among those whose accuracy drop against the fp32
source is within the budget; top-1 on labelled data, else top-1 agreement with fp32."""

from __future__ import annotations

import duckdb

from harness.errors import InputError

METRICS = {"p50": ("latency_p50_ms", "ms"), "size": ("size_bytes", "bytes"),
           "energy": ("energy_mj_per_inference", "mJ/inference")}

SQL = """
WITH src AS (
    -- one given run, or else the latest run of each matrix and tag
    SELECT * FROM results
    WHERE CASE WHEN $run IS NULL THEN run_id IN (SELECT DISTINCT run_id FROM latest)
               ELSE run_id = $run END
),
r AS (
    SELECT *, 100 * coalesce(reference_top1 - accuracy_top1, 1 - fidelity_top1_agreement)
                  AS drop_pts
    FROM src
    WHERE status = 'ok' AND ($device IS NULL OR device = $device)
      AND batch_size = coalesce($batch, (SELECT min(batch_size) FROM src s2
                                         WHERE s2.run_id = src.run_id))
),
base AS (SELECT run_id, model, device, min({col}) AS fp32_value FROM r
         WHERE is_baseline GROUP BY ALL),
best AS (
    SELECT * FROM r WHERE drop_pts <= $budget AND {col} IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY run_id, model, device ORDER BY {col}) = 1
)
SELECT m.run_id, m.model, m.device, best.method, best.format, best.precision,
       best.batch_size, best.{col} AS value, base.fp32_value, best.drop_pts,
       (SELECT max(energy_note) FROM r e WHERE e.run_id = m.run_id) AS energy_note
FROM (SELECT DISTINCT run_id, model, device FROM r) m
LEFT JOIN best USING (run_id, model, device)
LEFT JOIN base USING (run_id, model, device)
ORDER BY m.model, m.device
"""


def recommend(con: duckdb.DuckDBPyConnection, *, metric: str = "p50", device: str | None = None,
              max_accuracy_drop: float = 1.0, batch_size: int | None = None,
              run_id: str | None = None) -> list[dict]:
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}", field="--metric",
                         allowed=", ".join(METRICS))
    col, _ = METRICS[metric]
    cur = con.execute(SQL.format(col=col), {"device": device, "batch": batch_size,
                                            "budget": max_accuracy_drop, "run": run_id})
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def print_recommendations(rows: list[dict], metric: str, budget: float, console) -> None:
    from rich.table import Table

    _, unit = METRICS[metric]
    table = Table(title=f"What to ship: lowest {metric} within {budget:g} point(s) of fp32 "
                        "accuracy")
    for col in ("model", "device", "method", "format", "precision", "batch", f"{metric} ({unit})",
                "vs fp32", "drop pts", "run"):
        table.add_column(col)
    for r in rows:
        if r["method"] is None:
            note = ("no energy counter: " + (r["energy_note"] or "unknown")) if metric == \
                "energy" else "nothing within the accuracy budget"
            table.add_row(r["model"], r["device"], note, "", "", "", "", "", "", r["run_id"])
            continue
        ratio = (r["fp32_value"] / r["value"]) if r["fp32_value"] and r["value"] else None
        table.add_row(r["model"], r["device"], r["method"], r["format"], r["precision"],
                      str(r["batch_size"]), f"{r['value']:.4g}",
                      f"{ratio:.2f}x better" if ratio else "-", f"{r['drop_pts']:+.2f}",
                      r["run_id"])
    console.print(table)

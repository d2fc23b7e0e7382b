"""`harness recommend`: what to ship, per model, device and shape, from the results database.

The best ok variant by the chosen metric among those that keep the fp32 source's quality:
a labelled metric (top-1) within the budget in points, a fidelity metric (cosine to the
fp32 outputs) above the threshold of its precision (harness/results/quality_sql.py)."""

from __future__ import annotations

import duckdb

from harness.errors import InputError

METRICS = {"p50": ("latency_p50_ms", "ms"), "size": ("size_bytes", "bytes"),
           "energy": ("energy_mj_per_inference", "mJ/inference"),
           "throughput": (None, "inferences/s")}  # its column is the scenario's
HIGHER_IS_BETTER = {"throughput"}
# --metric throughput, per scenario (schema v12): single-stream throughput (batch / p50),
# the offline scenario's inferences per second, the server's rate at its p99 bound x batch
THROUGHPUT_COLUMNS = {"single_stream": "throughput_ips", "offline": "offline_ips",
                      "server": "server_ips"}

SQL = """
WITH src AS (
    -- one given run, or else the latest run of each matrix and tag
    SELECT res.*, o.throughput_ips AS offline_ips, s.throughput_ips AS server_ips
    FROM results res
    LEFT JOIN scenario_results o ON o.run_id = res.run_id AND o.cell_id = res.cell_id
         AND o.batch_size = res.batch_size AND o.shape = res.shape AND o.scenario = 'offline'
    LEFT JOIN scenario_results s ON s.run_id = res.run_id AND s.cell_id = res.cell_id
         AND s.batch_size = res.batch_size AND s.shape = res.shape AND s.scenario = 'server'
    WHERE CASE WHEN $run IS NULL THEN res.run_id IN (SELECT DISTINCT run_id FROM latest)
               ELSE res.run_id = $run END
),
r AS (
    SELECT *, {drop} AS drop_pts, {within} AS keeps_quality
    FROM src
    WHERE status = 'ok' AND ($device IS NULL OR device = $device)
      AND ($emulated OR NOT emulated)  -- an emulated device's timings are the host's
      AND batch_size = coalesce($batch, (SELECT min(batch_size) FROM src s2
                                         WHERE s2.run_id = src.run_id))
),
base AS (SELECT run_id, model, device, shape, {pick}({col}) AS fp32_value FROM r
         WHERE is_baseline GROUP BY ALL),
best AS (
    SELECT * FROM r WHERE keeps_quality AND {col} IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY run_id, model, device, shape
                               ORDER BY {col} {order}) = 1
)
SELECT m.run_id, m.model, m.device, m.shape, best.method, best.format, best.precision,
       best.batch_size, best.{col} AS value, base.fp32_value, best.drop_pts,
       best.quality, best.quality_metric, best.quality_threshold,
       (SELECT max(energy_note) FROM r e WHERE e.run_id = m.run_id) AS energy_note
FROM (SELECT DISTINCT run_id, model, device, shape FROM r) m
LEFT JOIN best USING (run_id, model, device, shape)
LEFT JOIN base USING (run_id, model, device, shape)
ORDER BY m.model, m.device, m.shape
"""


def recommend(con: duckdb.DuckDBPyConnection, *, metric: str = "p50", device: str | None = None,
              max_accuracy_drop: float = 1.0, batch_size: int | None = None,
              run_id: str | None = None, include_emulated: bool = False,
              scenario: str | None = None) -> list[dict]:
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}", field="--metric",
                         allowed=", ".join(METRICS))
    col, _ = METRICS[metric]
    if scenario and metric != "throughput":
        raise InputError(f"--scenario goes with --metric throughput (the {metric} figure "
                         "is the single-stream one)", field="--scenario")
    if metric == "throughput":
        if (scenario or "offline") not in THROUGHPUT_COLUMNS:
            raise InputError(f"unknown scenario {scenario!r}", field="--scenario",
                             allowed=", ".join(THROUGHPUT_COLUMNS))
        col = THROUGHPUT_COLUMNS[scenario or "offline"]
    higher = metric in HIGHER_IS_BETTER
    from harness.results.quality_sql import DROP_PTS, within_budget

    cur = con.execute(SQL.format(col=col, drop=DROP_PTS, within=within_budget(),
                                 order="DESC" if higher else "ASC",
                                 pick="max" if higher else "min"),
                      {"device": device, "batch": batch_size,
                                            "budget": max_accuracy_drop, "run": run_id,
                       "emulated": include_emulated})
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def print_recommendations(rows: list[dict], metric: str, budget: float, console) -> None:
    from rich.table import Table

    _, unit = METRICS[metric]
    from harness.results.summary import gate_text, quality_text

    best = "highest" if metric in HIGHER_IS_BETTER else "lowest"
    table = Table(title=f"What to ship: {best} {metric} that keeps the fp32 quality (top-1 "
                        f"within {budget:g} point(s); without labels, cosine above the "
                        f"precision's threshold)")
    for col in ("model", "device", "shape", "method", "format", "precision", "batch",
                f"{metric} ({unit})", "vs fp32", "quality", "drop", "run"):
        table.add_column(col)
    for r in rows:
        if r["method"] is None:
            note = ("no energy counter: " + (r["energy_note"] or "unknown")) if metric == \
                "energy" else "nothing keeps the quality"
            table.add_row(r["model"], r["device"], r["shape"] or "-", note, "", "", "", "",
                          "", "", "", r["run_id"])
            continue
        ratio = (r["fp32_value"] / r["value"]) if r["fp32_value"] and r["value"] else None
        if ratio and metric in HIGHER_IS_BETTER:
            ratio = 1.0 / ratio
        table.add_row(r["model"], r["device"], r["shape"] or "-", r["method"], r["format"],
                      r["precision"], str(r["batch_size"]), f"{r['value']:.4g}",
                      f"{ratio:.2f}x better" if ratio else "-",
                      quality_text(r["quality"], r["quality_metric"], r["quality_threshold"]),
                      gate_text(r["drop_pts"], r["quality_threshold"]), r["run_id"])
    console.print(table)

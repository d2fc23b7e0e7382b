"""The report's throughput section: per model and device, the latency-vs-throughput figure
(scenario_plots.py) and a table of each variant's three answers: single-stream p50, offline
inferences/s with the concurrency used, and the highest server rate under the p99 bound."""

from __future__ import annotations

from html import escape

import duckdb

from harness.results import scenario_plots
from harness.results.summary import number_text


def gather(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    """One group per (model, device, batch, shape) with scenario results."""
    rows = con.execute("""
        SELECT * FROM scenario_summary WHERE run_id = ?
        ORDER BY model, device, batch_size, shape, format, method""", [run_id])
    names = [d[0] for d in rows.description]
    groups: dict[tuple, dict] = {}
    for row in (dict(zip(names, r)) for r in rows.fetchall()):
        key = (row["model"], row["device"], row["batch_size"], row["shape"])
        group = groups.setdefault(key, {"model": row["model"], "device": row["device"],
                                        "batch_size": row["batch_size"],
                                        "shape": row["shape"], "variants": []})
        curve = con.execute("""SELECT achieved_qps * ?, latency_p99_ms, met FROM server_rates
                               WHERE run_id = ? AND cell_id = ? AND batch_size = ?
                                 AND shape = ? ORDER BY step""",
                            [row["batch_size"], run_id, row["cell_id"], row["batch_size"],
                             row["shape"]]).fetchall()
        row["curve"] = curve
        group["variants"].append(row)
    return list(groups.values())


def _num(value, fmt: str = "{:.1f}") -> str:
    return number_text(value, fmt)


def render_html(groups: list[dict], img, table) -> str:
    if not groups:
        return ("<p class=muted>No cell of this run measured the offline or server scenario "
                "(<code>measure.scenarios: [single_stream, offline, server]</code>).</p>")
    parts = ["<p class=muted>Offline: every request at once with the runtime's own "
             "concurrency. Server: Poisson arrivals at each rate tried, latency from the "
             "scheduled arrival (queueing counts); the answer is the highest rate whose p99 "
             "(LoadGen's early-stopping estimate where there were enough requests) stays "
             "under the bound.</p>"]
    for group in groups:
        title = (f"{group['model']} on {group['device']}, batch {group['batch_size']}"
                 + (f", {group['shape']}" if group["shape"] else ""))
        bounds = {v["server_p99_bound_ms"] for v in group["variants"]} - {None}
        variants = [{"label": f"{v['method']}/{v['format']}",
                     "curve": v["curve"],
                     "offline": (v["offline_ips"], v["offline_p99_ms"])
                     if v["offline_ips"] else None} for v in group["variants"]]
        parts.append(f"<h3>{escape(title)}</h3>")
        parts.append(img(scenario_plots.latency_vs_throughput(
            variants, f"latency vs throughput: {title}",
            next(iter(bounds)) if len(bounds) == 1 else None), f"latency vs throughput: {title}"))
        rows = [[f"{v['method']}/{v['format']}", v["precision"] or "-",
                 _num(v["single_stream_p50_ms"], "{:.3f}"), _num(v["single_stream_ips"]),
                 _num(v["offline_ips"]), str(v["offline_concurrency"] or "-"),
                 _num(v["server_max_qps"]), _num(v["server_p99_at_max_ms"], "{:.2f}"),
                 v["scenario_note"] or v["offline_concurrency_source"] or ""]
                for v in group["variants"]]
        parts.append(table(["variant", "precision", "single-stream p50 ms",
                            "single-stream /s", "offline /s", "in flight",
                            "server max rate /s", "p99 at it ms", "note"], rows,
                           {2, 3, 4, 5, 6, 7}))
    return "".join(parts)

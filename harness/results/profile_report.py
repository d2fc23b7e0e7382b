"""The report's "why it is fast or slow" section: per model and device, the op-type
breakdown of every profiled variant (a stacked-bar figure), its share of time in int8
kernels, and one generated sentence per notable variant against the same format's fp32
baseline. Variants without a profile are listed with the reason their runtime gave."""

from __future__ import annotations

import math
from html import escape

import duckdb

from harness.results import profile_plots, profiles

NOTABLE_RATIO = 1.2   # a variant this much faster or slower than its baseline is explained
MAX_SENTENCES = 8     # per model and device


def gather(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    """One group per (model, device), at its smallest profiled batch and first shape."""
    cur = con.execute("""
        WITH profiled AS (
            SELECT *, min(batch_size) OVER (PARTITION BY model, device) AS first_batch,
                      min(shape) OVER (PARTITION BY model, device) AS first_shape
            FROM results WHERE run_id = ? AND status = 'ok'
              AND (profile_total_ms IS NOT NULL OR profile_note IS NOT NULL))
        SELECT cell_id, model, method, format, device, precision, batch_size, shape,
               is_baseline, latency_p50_ms, profile_total_ms, profile_note
        FROM profiled WHERE batch_size = first_batch AND shape = first_shape
        ORDER BY model, device, format, NOT is_baseline, method""", [run_id])
    names = [d[0] for d in cur.description]
    groups: dict[tuple, dict] = {}
    for row in (dict(zip(names, r)) for r in cur.fetchall()):
        group = groups.setdefault((row["model"], row["device"]), {
            "model": row["model"], "device": row["device"], "batch_size": row["batch_size"],
            "shape": row["shape"], "variants": []})
        key = profiles.CellKey(run_id, row["cell_id"], row["batch_size"], row["shape"])
        row["layers"] = profiles.layers(con, key) if row["profile_total_ms"] else []
        group["variants"].append(row)
    return list(groups.values())


def _label(v: dict) -> str:
    return f"{v['method']}/{v['format']}"


def sentences(group: dict) -> list[str]:
    """Explanations of the variants that differ most from their format's baseline."""
    baselines = {v["format"]: v for v in group["variants"] if v["is_baseline"] and v["layers"]}
    notable = []
    for v in group["variants"]:
        base = baselines.get(v["format"])
        if v["is_baseline"] or not v["layers"] or not base:
            continue
        ratio = v["profile_total_ms"] / base["profile_total_ms"]
        stayed_float = v["precision"] == "int8" and profiles.int8_share(v["layers"]) < 0.5
        if ratio >= NOTABLE_RATIO or ratio <= 1 / NOTABLE_RATIO or stayed_float:
            notable.append((abs(math.log(ratio)) + stayed_float, v, base))
    notable.sort(key=lambda t: -t[0])
    return [profiles.explain(_label(v), v["layers"], v["profile_total_ms"], _label(base),
                             base["layers"], base["profile_total_ms"])
            for _, v, base in notable[:MAX_SENTENCES]]


def _figure(group: dict) -> bytes:
    shape = f", {group['shape']}" if group["shape"] else ""
    bars = [{"label": _label(v),
             "op_types": {g["op_type"]: g["time_ms"]
                          for g in profiles.rollup(v["layers"], "op_type")},
             "int8_share": profiles.int8_share(v["layers"])}
            for v in group["variants"]]
    return profile_plots.op_type_bars(
        bars, f"{group['model']} on {group['device']} (batch {group['batch_size']}{shape})")


def render_html(groups: list[dict], img, table) -> str:
    """img(png, alt) and table(headers, rows, numeric) are the report's own helpers."""
    if not groups:
        return ("<p class=muted>No cell of this run has a per-layer profile (set "
                "<code>measure.profile: true</code> in the matrix).</p>")
    parts = ["<p class=muted>Each runtime's own profiler, in a pass after the timed loop "
             "(profiling never touches a latency sample). <code>harness profile CELL</code> "
             "prints a cell's layers; <code>--diff</code> lines up two variants.</p>"]
    for group in groups:
        title = f"{group['model']} on {group['device']}"
        parts.append(f"<h3>{escape(title)}</h3>")
        parts.append(img(_figure(group), f"op-type breakdown: {title}"))
        rows, notes = [], {}
        for v in group["variants"]:
            if not v["layers"]:
                notes.setdefault(v["profile_note"] or "no layers", []).append(_label(v))
                continue
            top = profiles.rollup(v["layers"], "op_type")[0]
            rows.append([_label(v), v["precision"] or "-", f"{v['latency_p50_ms']:.3f}",
                         f"{v['profile_total_ms']:.3f}", f"{top['op_type']} {top['share']:.0%}",
                         f"{profiles.int8_share(v['layers']):.0%}", str(len(v["layers"]))])
        if rows:
            parts.append(table(["variant", "precision", "p50 ms", "profiled ms / run",
                                "top op type", "time in int8", "layers"], rows,
                               {2, 3, 5, 6}))
        said = sentences(group)
        if said:
            parts.append("<ul>" + "".join(f"<li>{escape(s)}</li>" for s in said) + "</ul>")
        for note, labels in notes.items():
            parts.append(f"<p class=muted>No profile for {escape(', '.join(labels))}: "
                         f"{escape(note)}</p>")
    return "".join(parts)

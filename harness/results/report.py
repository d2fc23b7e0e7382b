"""`harness report`: one run as a self-contained HTML page, or a short Markdown summary.

The HTML file carries everything inline (CSS, PNG plots as base64 data URIs, no scripts,
no external URL), so it can be mailed, attached to a CI job or opened offline years later.
Every piece of text from the database is escaped: errors contain tracebacks with `<`."""

from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path

import duckdb

from harness.results import plots, profile_report, scenario_report
from harness.errors import InputError
from harness.results.summary import ACCURACY_BUDGET_POINTS, baseline_methods, best_rows

PROBLEM_STATUSES = ("failed", "timeout", "unavailable")

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1320px;
color:#1d1d1f;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h3{font-size:15px}h2{font-size:17px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top;
white-space:nowrap}td:last-child{white-space:normal}
th{background:#f4f4f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.noisy td{background:#fff6e0}.tag{display:inline-block;padding:0 6px;border-radius:8px;
font-size:11px;background:#eee;margin-left:4px}.tag.warn{background:#ffd98a}
.tag.bad{background:#f7b4b4}.st-ok{color:#17752a}.st-failed,.st-timeout{color:#b00020}
.st-unavailable,.st-skipped{color:#7a5b00}img{max-width:100%;display:block;margin:8px 0 20px}
pre{background:#f6f6f8;padding:8px;overflow-x:auto;font-size:12px;white-space:pre-wrap}
.meta td:first-child{font-weight:600;background:#fafafa}.scroll{overflow-x:auto}
table.results{font-size:12px}table.results td,table.results th{padding:2px 6px}.muted{color:#666;font-size:13px}
"""


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def load_run(con: duckdb.DuckDBPyConnection, run_id: str | None) -> dict:
    """The run's row; None picks the latest by started_at. Unknown ids are input errors
    that list the recent runs, so the user can copy the right one."""
    recent = [r[0] for r in con.execute(
        "SELECT run_id FROM runs ORDER BY started_at DESC NULLS LAST LIMIT 10").fetchall()]
    if not recent:
        raise InputError("the database has no runs yet (run `harness sweep` first)",
                         field="RUN_ID")
    wanted = run_id if run_id is not None else recent[0]
    rows = _dicts(con.execute("SELECT * FROM runs WHERE run_id = ?", [wanted]))
    if not rows:
        raise InputError(f"unknown run {wanted!r}", field="RUN_ID",
                         allowed="a run id of this database; recent: " + ", ".join(recent))
    return rows[0]


def _gather(con: duckdb.DuckDBPyConnection, run: dict) -> dict:
    rid = run["run_id"]
    data = {"run": run, "baselines": baseline_methods(con, rid)}
    data["counts"] = con.execute("SELECT status, count(*) FROM cells WHERE run_id = ? "
                                 "GROUP BY ALL ORDER BY 2 DESC, 1", [rid]).fetchall()
    data["results"] = _dicts(con.execute(
        "SELECT * FROM results WHERE run_id = ? AND status = 'ok' AND batch_size IS NOT NULL "
        "ORDER BY model, device, batch_size, method, format", [rid]))
    data["problems"] = _dicts(con.execute(
        "SELECT cell_id, model, method, format, device, status, error FROM cells "
        "WHERE run_id = ? AND status <> 'ok' ORDER BY status = 'skipped', cell_id", [rid]))
    data["best"] = best_rows(con, rid, data["baselines"])
    data["samples"] = _dicts(con.execute(
        "SELECT c.model, c.method, c.format, c.device, s.batch_size, "
        "list(s.latency_ms ORDER BY s.iteration) AS samples FROM latency_samples s "
        "JOIN cells c USING (run_id, cell_id) WHERE s.run_id = ? GROUP BY ALL", [rid]))
    data["devices"] = _dicts(con.execute(
        "SELECT * FROM devices WHERE device_id IN (SELECT device_id FROM cells "
        "WHERE run_id = ?) ORDER BY device_id", [rid]))
    data["profiles"] = profile_report.gather(con, rid)
    data["scenarios"] = scenario_report.gather(con, rid)
    data["toolchain"] = {}
    for (text,) in con.execute("SELECT DISTINCT v.toolchain FROM variants v JOIN cells c "
                               "USING (variant_id) WHERE c.run_id = ?", [rid]).fetchall():
        for name, version in (json.loads(text) if text else {}).items():
            if isinstance(version, str):  # package versions; options are dicts
                data["toolchain"].setdefault(name, set()).add(version)
    return data


# formatting -------------------------------------------------------------------------------
def _num(value, fmt: str = "{:.3f}") -> str:
    from harness.results.summary import number_text
    return number_text(value, fmt)


def _quality_text(row: dict) -> str:
    from harness.results.summary import quality_text
    return quality_text(row.get("quality"), row.get("quality_metric"),
                        row.get("quality_threshold"))


class _Html(str):
    """Markup built here from escaped parts; every other value is escaped by `_cell`."""


def _tag(text: str, kind: str = "") -> _Html:
    return _Html(f' <span class="tag {kind}">{escape(text)}</span>')


def _cell(value, numeric: bool = False) -> str:
    text = value if isinstance(value, _Html) else escape(str(value))
    return f"<td{' class=n' if numeric else ''}>{text}</td>"


def _table(headers: list[str] | None, rows: list[list], numeric: set[int] = frozenset(),
           row_classes: list[str] | None = None, cls: str = "") -> str:
    """A table; headers None makes a two-column fact sheet (no header row)."""
    head = ("<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers)
            + "</tr></thead>") if headers else ""
    body = []
    for k, row in enumerate(rows):
        tr = f' class="{row_classes[k]}"' if row_classes and row_classes[k] else ""
        body.append(f"<tr{tr}>" + "".join(_cell(v, i in numeric) for i, v in enumerate(row))
                    + "</tr>")
    return (f"<table{' class=' + cls if cls else ''}>{head}<tbody>{''.join(body)}"
            "</tbody></table>")


BEST_HEADERS = ["model", "device", "shape", "method", "format", "precision", "batch",
                "p50 ms", "vs baseline", "quality", "drop", "size MB"]


def _parity_note(suspect: bool | None) -> str:
    return {True: " (parity suspect)", None: " (parity not checked)"}.get(suspect, "")


def _best_cells(best: tuple) -> list[str]:
    from harness.results.summary import gate_text, quality_text

    (model, device, method, fmt, precision, batch, p50, speedup, quality, metric, threshold,
     drop, size, suspect, shape) = best
    return [model, device, shape or "-", method, fmt, precision + _parity_note(suspect),
            str(batch), _num(p50), _num(speedup, "{:.2f}x"),
            quality_text(quality, metric, threshold), gate_text(drop, threshold),
            _num(size and size / 2**20, "{:.2f}")]


def _headline(error: str | None) -> str:
    """One line for an error: a traceback's last line names the exception, its first line
    only says 'Traceback'."""
    lines = [ln.strip() for ln in (error or "").strip().splitlines() if ln.strip()]
    if not lines:
        return "(no reason stored)"
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def _header_facts(data: dict) -> list[list[str]]:
    run = data["run"]
    counts = ", ".join(f"{n} {status}" for status, n in data["counts"]) or "no cells"
    matrix = f"{run.get('matrix_name') or '-'}" + (f" ({run['matrix_path']})"
                                                 if run.get("matrix_path") else "")
    return [["run", run["run_id"]], ["matrix", matrix], ["tag", run.get("tag") or "-"],
            ["status", run.get("status") or "-"], ["started", str(run.get("started_at"))],
            ["finished", str(run.get("finished_at") or "-")], ["cells", counts]]


# HTML -------------------------------------------------------------------------------------
def _img(png: bytes, alt: str) -> str:
    return (f'<img alt="{escape(alt)}" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode("ascii")}">')


def _results_table(rows: list[dict]) -> str:
    headers = ["model", "method", "format", "precision", "device", "batch", "p50 ms",
               "p99 ms", "CV", "throughput /s", "top-1 / fidelity", "size MB", "peak RSS MB",
               "stop"]
    body, classes = [], []
    for r in rows:
        noisy = bool(r.get("latency_noisy"))  # the worker's flag: measure.noisy_cv
        body.append([r["model"], r["method"], r["format"], r.get("precision") or "-",
                     _Html(escape(r["device"]) + (_tag("emulated", "warn") if r.get("emulated")
                                                  else "")),
                     r["batch_size"], _num(r.get("latency_p50_ms")),
                     _num(r.get("latency_p99_ms")),
                     _Html(escape(_num(r.get("latency_cv"), "{:.1%}"))
                           + (_tag("noisy", "warn") if noisy else "")),
                     _num(r.get("throughput_ips"), "{:.1f}"),
                     _Html(escape(_quality_text(r)) + _parity_tag(r.get("parity_status"))
                           + (_tag(r["warnings"].split(":")[0], "warn") if r.get("warnings")
                              else "")),
                     _num(r.get("size_bytes") and r["size_bytes"] / 2**20, "{:.2f}"),
                     _num(r.get("peak_rss_mb"), "{:.0f}"), r.get("stop_reason") or "-"])
        classes.append("noisy" if noisy else "")
    # Wide: a scrolling box rather than a page wider than the window.
    return ("<div class=scroll>" + _table(headers, body, numeric={5, 6, 7, 8, 9, 11, 12},
                                          row_classes=classes, cls="results") + "</div>")


def _parity_tag(status: str | None) -> str:
    """Parity of the artifact with its source, checked on the build host: flagged when it
    failed, and said when it could not be checked (never shown as passed)."""
    if status == "suspect":
        return _tag("parity suspect", "bad")
    if status == "not checked":
        return _tag("parity not checked")
    return ""


def _problems_html(problems: list[dict]) -> str:
    if not problems:
        return "<p class=muted>Every cell ran to the end.</p>"
    items = []
    for p in problems:
        text = (p.get("error") or "").strip()
        first = _headline(text)
        detail = f"<details><summary>full text</summary><pre>{escape(text)}</pre></details>" \
            if "\n" in text else ""
        items.append(f"<tr><td class=st-{escape(p['status'])}>{escape(p['status'])}</td>"
                     f"<td>{escape(p['cell_id'])}</td><td>{escape(first)}{detail}</td></tr>")
    return ("<table><thead><tr><th>status</th><th>cell</th><th>reason / error</th></tr></thead>"
            f"<tbody>{''.join(items)}</tbody></table>")


def _environment_html(data: dict) -> str:
    run = data["run"]
    facts = [["host", run.get("host") or "-"], ["harness version", run.get("harness_version")
             or "-"], ["git sha", run.get("git_sha") or "-"],
             ["matrix sha256", run.get("matrix_hash") or "-"],
             ["Ray address", run.get("address") or "embedded"]]
    parts = [_table(None, facts, cls="meta")]
    devices = [[d["device_id"], d.get("kind") + (" (emulated: its timings are the host's, "
                                                 "left out of best picks and gates)"
                                                 if d.get("emulated") else ""),
                d.get("host"), d.get("name") or "-",
                d.get("cpu_model") or "-", d.get("gpu_name") or "-", d.get("driver") or "-",
                d.get("runtimes") or "{}"] for d in data["devices"]]
    parts.append("<h3>Devices</h3>" + (_table(["device id", "kind", "host", "name", "CPU", "GPU",
                                               "driver", "runtimes"], devices)
                                       if devices else "<p class=muted>none recorded</p>"))
    tools = [[name, ", ".join(sorted(v))] for name, v in sorted(data["toolchain"].items())]
    parts.append("<h3>Toolchain (from the run's variants)</h3>"
                 + (_table(["package", "version"], tools) if tools else
                    "<p class=muted>none recorded</p>"))
    parts.append(f"<details><summary>matrix YAML</summary><pre>"
                 f"{escape(run.get('matrix_yaml') or '(not stored)')}</pre></details>")
    return "".join(parts)


def render_html(data: dict) -> str:
    run, results = data["run"], data["results"]
    baselines = data["baselines"]
    figures = [
        ("Latency vs accuracy (Pareto)", plots.pareto_plot(results)),
        ("Size vs accuracy", plots.size_plot(results)),
        ("Speedup vs baseline" + (f" ({', '.join(baselines)})" if baselines else ""),
         plots.speedup_heatmap(results, baselines)),
        ("Latency distributions (raw samples)", plots.latency_distributions(data["samples"])),
    ]
    best = ([_best_cells(b) for b in data["best"]])
    noisy = sum(1 for r in results if r.get("latency_noisy"))
    sections = [
        f"<h1>harness report: {escape(run['run_id'])}</h1>",
        _table(None, _header_facts(data), cls="meta"),
        "<h2>Best variant per model, device and shape that keeps the fp32 quality</h2>",
        _table(BEST_HEADERS, best, numeric={6, 7, 8, 11}) if best else
        "<p class=muted>No ok cell within the accuracy budget.</p>",
        "<p class=muted>Drop: points of top-1 lost against the reference on labelled data; on "
        "unlabelled data, points of disagreement with the fp32 source (fidelity).</p>",
        "<h2>Plots</h2>",
        *(f"<h3>{escape(title)}</h3>{_img(png, title)}" for title, png in figures),
        "<h2>Throughput under load: offline and server scenarios</h2>",
        scenario_report.render_html(data.get("scenarios") or [], _img, _table),
        "<h2>Why it is fast or slow: per-layer profiles</h2>",
        profile_report.render_html(data.get("profiles") or [], _img, _table),
        f"<h2>All results ({len(results)} rows; {noisy} noisy: CV above the matrix's "
        f"measure.noisy_cv)</h2>",
        _results_table(results) if results else "<p class=muted>No ok cell.</p>",
        "<h2>Cells that did not run, and why</h2>", _problems_html(data["problems"]),
        "<h2>Environment</h2>", _environment_html(data),
    ]
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            f"<title>harness report {escape(run['run_id'])}</title><style>{CSS}</style></head>"
            "<body>" + "\n".join(sections) + "</body></html>\n")


# Markdown ---------------------------------------------------------------------------------
def _md_row(cells: list) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def render_markdown(data: dict) -> str:
    facts = dict(_header_facts(data))
    lines = [f"## harness run `{facts['run']}`: {facts['status']} (matrix {facts['matrix']}, "
             f"tag {facts['tag']}; {facts['cells']})", "",
             f"### Best variant per model, device and shape that keeps the fp32 quality "
             f"(top-1 within {ACCURACY_BUDGET_POINTS:g} point, or cosine above the "
             f"precision's threshold)", ""]
    if data["best"]:
        lines += [_md_row(BEST_HEADERS), _md_row(["---"] * len(BEST_HEADERS))]
        lines += [_md_row(_best_cells(b)) for b in data["best"]]
    else:
        lines.append("No ok cell within the accuracy budget.")
    problems = [p for p in data["problems"] if p["status"] in PROBLEM_STATUSES]
    skipped = len(data["problems"]) - len(problems)
    lines += ["", f"### Cells that did not run to the end: {len(problems)}"]
    for p in problems:
        lines.append(f"- **{p['status']}** `{p['cell_id']}`: {_headline(p.get('error'))}")
    if skipped:
        lines.append(f"- {skipped} cell(s) skipped by the plan (reasons in the HTML report)")
    return "\n".join(lines) + "\n"


def write_report(con: duckdb.DuckDBPyConnection, run_id: str | None, out: Path,
                 fmt: str = "html") -> Path:
    """Write the report of `run_id` (None: the latest run) to `out`; return the path."""
    if fmt not in ("html", "md"):
        raise InputError(f"unknown report format {fmt!r}", field="--format", allowed="html, md")
    data = _gather(con, load_run(con, run_id))
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_html(data) if fmt == "html" else render_markdown(data),
                       encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the report: {exc}", file=str(out)) from None
    return out

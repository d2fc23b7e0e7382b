"""`harness profile CELL_OR_RUN`: the hotspot table of one cell (like `benchmark_app -pc`),
its roll-up by op type or precision, two variants side by side (`--diff`), or, for a run,
every profiled cell with its top op type and int8 share."""

from __future__ import annotations

import json

from harness.errors import InputError
from harness.results import profiles
from harness.results.runref import resolve_run
from harness.results.store import open_read_only

DEFAULT_TOP = 15


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}" if x >= 0.01 or x == 0 else "<1%"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}" if x < 10 else f"{x:.1f}"


def _is_run(con, ref: str) -> bool:
    return ref.startswith("tag:") or con.execute(
        "SELECT 1 FROM runs WHERE run_id = ?", [ref]).fetchone() is not None


def run_profile(args, console) -> int:
    con = open_read_only(args.db)
    try:
        if _is_run(con, args.target):
            if args.diff:
                raise InputError("--diff compares two cells; give a cell id, not a run",
                                 field="--diff", allowed="harness profile CELL --diff CELL")
            rows = profiles.profiled_cells(con, resolve_run(con, args.target, db=args.db))
            return _print_run(rows, args, console)
        run_id = resolve_run(con, args.run, db=args.db) if args.run else None
        key = profiles.find_cell(con, args.target, run_id=run_id, batch_size=args.batch,
                                 shape=args.shape)
        info = profiles.cell_info(con, key)
        rows = profiles.layers(con, key)
        if args.diff:
            other = _other(con, args.diff, key)
            return _print_diff(info, rows, profiles.cell_info(con, other),
                               profiles.layers(con, other), args, console)
        return _print_cell(info, rows, args, console)
    finally:
        con.close()


def _other(con, cell_id: str, key: profiles.CellKey) -> profiles.CellKey:
    """The other cell at the same batch and shape, in the same run when it has it."""
    try:
        return profiles.find_cell(con, cell_id, run_id=key.run_id, batch_size=key.batch_size,
                                  shape=key.shape)
    except InputError:
        return profiles.find_cell(con, cell_id, batch_size=key.batch_size, shape=key.shape)


def _title(info: dict) -> str:
    shape = f", {info['shape']}" if info["shape"] else ""
    return (f"{info['cell_id']} (run {info['run_id']}, batch {info['batch_size']}{shape}, "
            f"{info['precision']})")


def _header(info: dict) -> str:
    return (f"p50 {_ms(info['latency_p50_ms'])} ms timed; profiled "
            f"{_ms(info['profile_total_ms'])} ms a run (median of {info['profile_runs']} "
            f"runs, {info['profile_source']})")


def _print_cell(info: dict, rows: list[dict], args, console) -> int:
    from rich.table import Table

    if args.format == "json":
        print(json.dumps({"cell": info, "layers": rows}, default=str, indent=1))
        return 0
    if info["profile_note"]:
        console.print(f"{_title(info)}: no per-layer profile: {info['profile_note']}")
        return 0
    top = args.top or DEFAULT_TOP
    console.print(_title(info))
    console.print(_header(info))
    table = Table()
    if args.by == "layer":
        for col in ("#", "layer", "op type", "exec type", "prec", "ms", "share", "cum"):
            table.add_column(col, overflow="fold",
                             justify="right" if col in ("#", "ms", "share", "cum") else "left")
        cumulative = 0.0
        for row in sorted(rows, key=lambda r: -r["time_ms"])[:top]:
            cumulative += row["share"] or 0.0
            table.add_row(str(row["layer_order"]), row["layer"], row["op_type"],
                          row["exec_type"] or "-", row["precision"] or "?",
                          _ms(row["time_ms"]), _pct(row["share"]), _pct(cumulative))
    else:
        for col in (args.by.replace("_", " "), "layers", "ms", "share"):
            table.add_column(col, justify="left" if col != "layers" and col != "ms"
                             and col != "share" else "right")
        for group in profiles.rollup(rows, args.by)[:top]:
            table.add_row(group[args.by], str(group["layers"]), _ms(group["time_ms"]),
                          _pct(group["share"]))
    console.print(table)
    shown = min(top, len(rows)) if args.by == "layer" else None
    if shown is not None and shown < len(rows):
        console.print(f"{shown} of {len(rows)} layers shown (--top N for more)")
    console.print(profiles.explain(f"{info['method']}/{info['format']}", rows,
                                   info["profile_total_ms"]))
    return 0


def _print_diff(a_info: dict, a_rows: list[dict], b_info: dict, b_rows: list[dict], args,
                console) -> int:
    from rich.table import Table

    how, lined = profiles.diff(a_rows, b_rows)
    if args.format == "json":
        print(json.dumps({"a": a_info, "b": b_info, "matched": how, "rows": lined},
                         default=str, indent=1))
        return 0
    for info in (a_info, b_info):
        if info["profile_note"]:
            console.print(f"{_title(info)}: no per-layer profile: {info['profile_note']}")
            return 0
    if args.top:
        lined = sorted(lined, key=lambda r: -abs((r["b_ms"] or 0) - (r["a_ms"] or 0)))
        lined = lined[:args.top]
    console.print(f"A = {_title(a_info)}\nB = {_title(b_info)}\nmatched {how}")
    table = Table()
    for col in ("A layer", "A op", "A prec", "A ms", "B layer", "B op", "B prec", "B ms",
                "B/A", ""):
        table.add_column(col, overflow="fold",
                         justify="right" if col in ("A ms", "B ms", "B/A") else "left")
    styles = {"faster": "green", "slower": "red"}
    for r in lined:
        table.add_row(r["a_layer"] or "-", r["a_op"] or "-", r["a_precision"] or "?",
                      _ms(r["a_ms"]), r["b_layer"] or "-", r["b_op"] or "-",
                      r["b_precision"] or "?", _ms(r["b_ms"]),
                      f"{r['ratio']:.2f}" if r["ratio"] is not None else "-", r["verdict"],
                      style=styles.get(r["verdict"]))
    console.print(table)
    a_label = f"{a_info['method']}/{a_info['format']}"
    console.print(profiles.explain(a_label, a_rows, a_info["profile_total_ms"]))
    console.print(profiles.explain(f"{b_info['method']}/{b_info['format']}", b_rows,
                                   b_info["profile_total_ms"], a_label, a_rows,
                                   a_info["profile_total_ms"]))
    return 0


def _print_run(rows: list[dict], args, console) -> int:
    from rich.table import Table

    if args.format == "json":
        print(json.dumps(rows, default=str, indent=1))
        return 0
    if not rows:
        console.print(f"run {args.target}: no cell has a per-layer profile "
                      "(set measure.profile: true in the matrix)")
        return 0
    table = Table(title=f"per-layer profiles of run {args.target}",
                  caption="harness profile CELL for a cell's layers; --diff CELL to line up "
                          "two variants")
    for col in ("cell", "batch", "shape", "p50 ms", "profiled ms", "top op type", "int8",
                "note"):
        table.add_column(col, overflow="fold",
                         justify="right" if col.endswith("ms") or col == "int8" else "left")
    for r in rows:
        top = f"{r['top_op']} {_pct(r['top_share'])}" if r["top_op"] else "-"
        table.add_row(r["cell_id"], str(r["batch_size"]), r["shape"] or "-",
                      _ms(r["latency_p50_ms"]), _ms(r["profile_total_ms"]), top,
                      _pct(r["int8_share"]), r["profile_note"] or "")
    console.print(table)
    return 0

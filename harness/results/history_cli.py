"""`harness history`: one line per cell with its figure over the last runs (a sparkline),
its verdict (stable, a step with its size and run, a drift, unstable, too short), what
changed at a step, and the command that re-measures it. Unstable cells are listed apart:
their history is too noisy to call a step in."""

from __future__ import annotations

import json

from harness.results import history
from harness.results.store import open_read_only

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], band: float = 0.10) -> str:
    """Bars scaled to the runs' range, but never to less than +-band around their median:
    a history that moves by 1% draws flat, one that steps by 30% does not."""
    middle = sorted(values)[len(values) // 2]
    lo = min(min(values), middle * (1 - band))
    hi = max(max(values), middle * (1 + band))
    if hi <= lo:
        return BARS[3] * len(values)
    return "".join(BARS[min(len(BARS) - 1, int((v - lo) / (hi - lo) * len(BARS)))]
                   for v in values)


def _fmt(value: float, metric: str) -> str:
    unit = history.METRICS[metric][1]
    if metric == "quality":
        return f"{value:.4f}"
    if metric == "size":
        return f"{value / 2**20:.2f} MB"
    return f"{value:.3g} {unit}".strip()


def describe(h: history.CellHistory, metric: str) -> str:
    v = h.verdict
    if v.kind == "step":
        parts = []
        for c in v.changes:
            run = h.points[c.index].run_id
            parts.append(f"{'worse' if c.worse else 'better'} {c.change:+.0%} at {run}"
                         + ("" if c.confirmed else " (one run so far)"))
        return "step: " + "; ".join(parts)
    if v.kind == "drift":
        return f"drift: {'worse' if v.drift > 0 else 'better'} by {abs(v.drift):.0%} over " \
               f"{len(h.points)} runs"
    if v.kind == "unstable":
        return f"unstable: runs spread ±{v.spread:.0%} around their level"
    if v.kind == "too short":
        return f"too short ({len(h.points)} runs; {history.MIN_RUNS} needed)"
    text = "stable" + (f" (±{v.spread:.0%})" if v.spread is not None else "")
    return text + (f", {len(v.outliers)} outlier run(s)" if v.outliers else "")


def explanations(h: history.CellHistory, db: str) -> list[dict]:
    """Per change point: what changed at it and the repro command."""
    out = []
    for c in h.verdict.changes:
        before, after = h.points[c.index - 1], h.points[c.index]
        out.append({"run": after.run_id, "previous_run": before.run_id,
                    "change": c.change, "worse": c.worse, "confirmed": c.confirmed,
                    "what_changed": history.what_changed(before, after),
                    "repro": history.repro(db, before, after)})
    return out


def run_history(args, console) -> int:
    con = open_read_only(args.db)
    try:
        runs = history.run_ids(con, args.tag, args.last)
        cells = history.load(con, runs, args.metric,
                             {"model": args.model, "method": args.method,
                              "format": args.target_format, "device": args.device},
                             include_emulated=args.include_emulated)
    finally:
        con.close()
    history.judge(cells, args.metric, args.min_effect)
    if args.regressed:
        cells = [h for h in cells if h.verdict.regressed]
    if args.json:
        print(json.dumps([_as_json(h, args) for h in cells], default=str, indent=1))
        return 0
    return _print(cells, runs, args, console)


def _as_json(h: history.CellHistory, args) -> dict:
    v = h.verdict
    return {"model": h.key[0], "method": h.key[1], "format": h.key[2], "device": h.key[3],
            "batch_size": h.key[4], "shape": h.key[5], "metric": args.metric,
            "runs": [p.run_id for p in h.points], "values": [p.value for p in h.points],
            "verdict": v.kind, "spread": v.spread, "drift": v.drift,
            "outliers": [h.points[k].run_id for k in v.outliers],
            "changes": explanations(h, args.db), "regressed": v.regressed}


def _print(cells: list[history.CellHistory], runs: list[str], args, console) -> int:
    from rich.table import Table

    scope = f"tag {args.tag}" if args.tag else "all runs"
    console.print(f"{args.metric} over the last {len(runs)} finished runs ({scope}: "
                  f"{runs[0]} .. {runs[-1]}); a step is a change beyond "
                  f"{args.min_effect:.0%}")
    if not cells:
        console.print("no cell matches" + (" (--regressed: none regressed)" if args.regressed
                                           else ""))
        return 0
    judged = [h for h in cells if h.verdict.kind != "unstable"]
    unstable = [h for h in cells if h.verdict.kind == "unstable"]
    if judged:
        table = Table()
        for col in ("cell", "batch", "shape", "history", "latest", "verdict"):
            table.add_column(col, overflow="fold")
        for h in judged:
            style = ("red" if h.verdict.regressed else
                     "green" if h.verdict.kind in ("step", "drift") else None)
            table.add_row(h.label, str(h.key[4]), h.key[5] or "-",
                          sparkline([p.value for p in h.points], args.min_effect),
                          _fmt(h.points[-1].value, args.metric), describe(h, args.metric),
                          style=style)
        console.print(table)
    for h in judged:
        for e in explanations(h, args.db):
            console.print(f"{h.label} b{h.key[4]}{' ' + h.key[5] if h.key[5] else ''}: "
                          f"{e['change']:+.0%} at {e['run']} (after {e['previous_run']}); "
                          f"changed: {'; '.join(e['what_changed'])}", markup=False,
                          highlight=False)
            console.print(f"  repro: {e['repro']}", markup=False, highlight=False)
    if unstable:
        console.print(f"\nunstable ({len(unstable)}): too noisy to call a step in; measure "
                      "with measure.processes >= 3 or on a quieter host")
        for h in unstable:
            console.print(f"  {h.label} b{h.key[4]}{' ' + h.key[5] if h.key[5] else ''}  "
                          f"{sparkline([p.value for p in h.points], args.min_effect)}  "
                          f"{describe(h, args.metric)}", markup=False, highlight=False)
    return 0

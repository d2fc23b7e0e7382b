"""`harness plan MATRIX`: the expanded cells and the skipped ones with their reasons, grouped
by reason (or every cell with --all, or JSON with --json)."""

from __future__ import annotations

import json


def run_plan(args, make_console) -> int:
    from harness.matrix.expand import expand
    from harness.matrix.load import load_matrix

    plan = expand(load_matrix(args.matrix))
    if args.json:
        print(json.dumps(plan.as_json(), indent=2))
        return 0
    console = make_console()
    if args.all:
        _print_every_cell(plan, console)
    else:
        _print_grouped(plan, console)
    return 0


EXCLUDED_GROUP = "excluded"


def _print_grouped(plan, console) -> None:
    """Cells to measure per model and method; skipped cells once per reason (--all lists
    every cell)."""
    from collections import defaultdict

    from rich.table import Table

    groups: dict = defaultdict(lambda: (set(), set()))
    for c in plan.cells:
        formats, devices = groups[(c.model, c.method)]
        formats.add(c.format)
        devices.add(c.device)
    table = Table(title=f"{plan.loaded.matrix.name}: {len(plan.cells)} cells to measure")
    for col in ("model", "method", "formats", "devices", "cells"):
        table.add_column(col, justify="right" if col == "cells" else "left")
    counts = defaultdict(int)
    for c in plan.cells:
        counts[(c.model, c.method)] += 1
    for (model, method), (formats, devices) in groups.items():
        table.add_row(model, method, ", ".join(sorted(formats)), ", ".join(sorted(devices)),
                      str(counts[(model, method)]))
    console.print(table)
    if not plan.skipped:
        return
    reasons: dict = defaultdict(list)
    rules: set[int] = set()
    for s in plan.skipped:
        if s.excluded_by is not None:  # one line for every cell the matrix excludes
            rules.add(s.excluded_by)
            reasons[EXCLUDED_GROUP].append(s.cell.cell_id)
        else:
            reasons[s.reason].append(s.cell.cell_id)
    if rules:
        reasons[f"excluded by the matrix: exclude {_spans(sorted(rules))}"] = (
            reasons.pop(EXCLUDED_GROUP))
    skipped = Table(title=f"{len(plan.skipped)} skipped cells, {len(reasons)} reasons "
                          f"(harness plan --all lists every cell)")
    skipped.add_column("cells", justify="right")
    skipped.add_column("reason", overflow="fold", ratio=3)
    skipped.add_column("for example", overflow="fold", ratio=1)
    for reason, cells in sorted(reasons.items(), key=lambda item: -len(item[1])):
        skipped.add_row(str(len(cells)), reason, "\n".join(cells[:2])
                        + (f"\n(+{len(cells) - 2} more)" if len(cells) > 2 else ""))
    console.print(skipped)


def _spans(numbers: list[int]) -> str:
    """[0, 1, 2, 5] -> '[0-2], [5]'."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"[{a}]" if a == b else f"[{a}-{b}]" for a, b in spans)


def _print_every_cell(plan, console) -> None:
    from rich.table import Table

    cells = Table(title=f"{plan.loaded.matrix.name}: {len(plan.cells)} cells to measure")
    for col in ("model", "method", "format", "device"):
        cells.add_column(col)
    for c in plan.cells:
        cells.add_row(c.model, c.method, c.format, c.device)
    console.print(cells)
    if plan.skipped:
        skipped = Table(title=f"{len(plan.skipped)} skipped cells")
        for col in ("model", "method", "format", "device", "reason"):
            skipped.add_column(col, overflow="fold")
        for s in plan.skipped:
            skipped.add_row(s.cell.model, s.cell.method, s.cell.format, s.cell.device, s.reason)
        console.print(skipped)

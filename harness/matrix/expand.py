"""Expansion: every model x method x format x device, either a cell to measure or a skip
with its reason. Pure (no Ray, no files written): `harness plan` shows exactly what a sweep
would run and why every other cell is skipped."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.matrix.load import LoadedMatrix
from harness.matrix.schema import training_skip_reason


@dataclass(frozen=True, order=True)
class Cell:
    model: str
    method: str
    format: str
    device: str

    @property
    def cell_id(self) -> str:
        return f"{self.model}/{self.method}/{self.format}/{self.device}"

    @property
    def variant_name(self) -> tuple[str, str, str]:
        return (self.model, self.method, self.format)


@dataclass(frozen=True)
class Skipped:
    cell: Cell
    reason: str
    excluded_by: int | None = None   # the index of the exclude rule that skipped it


@dataclass
class Plan:
    loaded: LoadedMatrix
    cells: list[Cell] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "matrix": self.loaded.matrix.name,
            "file": str(self.loaded.path),
            "cells": [c.__dict__ | {"cell_id": c.cell_id} for c in self.cells],
            "skipped": [s.cell.__dict__ | {"cell_id": s.cell.cell_id, "reason": s.reason}
                        for s in self.skipped],
        }


def expand(loaded: LoadedMatrix) -> Plan:
    """Every model x method x format x device, either a cell to run or a skip with a reason."""
    from harness.matrix.compat import model_reason, skip_reason
    from harness.tasks import task as task_plugin

    matrix = loaded.matrix
    plan = Plan(loaded=loaded)
    rules = [(i, r.names("model"), r.names("method"), r.names("format"), r.names("device"))
             for i, r in enumerate(matrix.exclude)]
    reasons: dict[tuple, str | None] = {}
    for model in matrix.models:
        facts = loaded.facts[model.name]
        task = task_plugin(facts.task)
        for method in matrix.methods:
            for cell_method in matrix.cell_methods(method.name):
                steps = matrix.steps(cell_method)
                # a model file's reason first: no data would let it train
                training = (model_reason(steps, facts, model.name)
                            or training_skip_reason(steps, model, loaded.labelled[model.name],
                                                    task))
                for fmt in matrix.formats:
                    for device in matrix.devices:
                        cell = Cell(model.name, cell_method, fmt, device)
                        # ExcludeRule.matches, inlined: up to 10k cells x 1000 rules; a rule
                        # naming a nas method covers all of its Pareto members
                        rule = next((i for i, mo, me, fo, de in rules
                                     if (mo is None or model.name in mo)
                                     and (me is None or method.name in me)
                                     and (fo is None or fmt in fo)
                                     and (de is None or device in de)), None)
                        if rule is not None:
                            plan.skipped.append(Skipped(cell, f"excluded by exclude[{rule}]", rule))
                            continue
                        key = (cell_method, fmt, device, facts)
                        if key not in reasons:
                            reasons[key] = skip_reason(steps, fmt, device, facts)
                        reason = training or reasons[key]
                        if reason:
                            plan.skipped.append(Skipped(cell, reason))
                        else:
                            plan.cells.append(cell)
    return plan

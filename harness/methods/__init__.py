"""The method registry: a method is a config (in harness.matrix.schema) plus one function.

Model-level methods transform a torch model on the build node; format-level methods are
realised by each format's own toolchain (harness.formats), because that runs fastest on
its runtime. Functions are named by module path and imported when a build needs them, so
planning a matrix never imports torch-pruning or optuna."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Literal


@dataclass(frozen=True)
class MethodEntry:
    level: Literal["model", "format"]
    function: str | None = None   # "module:function", apply(module, step, ctx) -> MethodOutput
    precision: str = "fp32"       # what the result computes in ("dtype": the step's dtype)
    extras: tuple[str, ...] = field(default=())  # modules the function needs

    def apply(self) -> Callable:
        module, _, name = self.function.partition(":")
        return getattr(importlib.import_module(module), name)


METHODS: dict[str, MethodEntry] = {
    "baseline": MethodEntry(level="model", function="harness.methods.baseline:apply_baseline"),
    "quantize": MethodEntry(level="format", precision="int8"),
    "cast": MethodEntry(level="model", function="harness.methods.cast:apply_cast",
                        precision="dtype"),
    "qat": MethodEntry(level="model", function="harness.methods.qat:apply_qat",
                       precision="int8", extras=("torchao",)),
    "prune": MethodEntry(level="model", function="harness.methods.prune:apply_prune",
                         extras=("torch_pruning",)),
    "distill": MethodEntry(level="model", function="harness.methods.distill:apply_distill"),
    "nas": MethodEntry(level="model", function="harness.methods.nas:apply_nas",
                       extras=("optuna",)),
}


def precision_of(steps) -> str:
    precision = "fp32"
    for step in steps:
        entry = METHODS[step.kind]
        if entry.precision == "dtype":
            precision = step.dtype
        elif entry.precision != "fp32":
            precision = entry.precision
    return precision

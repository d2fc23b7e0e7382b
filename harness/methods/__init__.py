"""The method registry: a method is a config (in harness.spec) plus one function.

Model-level methods transform a torch model on the build node; format-level methods are
realised by each format's own toolchain (harness.formats), because that runs fastest on
its runtime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from harness.methods.baseline import apply_baseline


@dataclass(frozen=True)
class MethodEntry:
    level: Literal["model", "format"]
    apply: Callable | None = None      # model-level: apply(module, step, dataset) -> module
    precision: str = "fp32"            # what the result computes in


METHODS: dict[str, MethodEntry] = {
    "baseline": MethodEntry(level="model", apply=apply_baseline),
    "quantize": MethodEntry(level="format", precision="int8"),
}


def precision_of(steps) -> str:
    precision = "fp32"
    for step in steps:
        if METHODS[step.kind].precision != "fp32":
            precision = METHODS[step.kind].precision
    return precision

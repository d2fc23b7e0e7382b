"""The fp32 source model, unchanged: the reference every other method is compared with."""

from __future__ import annotations

import torch

from harness.methods.context import BuildContext, MethodOutput


def apply_baseline(module: torch.nn.Module, step, ctx: BuildContext) -> MethodOutput:
    return MethodOutput(module)

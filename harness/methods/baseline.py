"""The fp32 source model, unchanged: the reference every other method is compared with."""

from __future__ import annotations

import torch


def apply_baseline(module: torch.nn.Module, step, dataset) -> torch.nn.Module:
    return module

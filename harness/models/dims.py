"""Dynamic dimensions for torch.export, from the inputs' named axes."""

from __future__ import annotations

MAX_DIM = 4096


def batch_dim() -> dict:
    import torch
    return {0: torch.export.Dim("batch", min=1, max=MAX_DIM)}

"""Re-estimate BatchNorm statistics on data.

A randomly initialised torchvision CNN with default BN statistics gives near-constant
outputs (mobilenet_v3_small ~1e-9), which makes every error and fidelity figure meaningless.
Running a few batches in train mode with a cumulative average gives it real statistics.
"""

from __future__ import annotations

import numpy as np
import torch

BATCH = 16
BATCHES = 4


@torch.no_grad()
def recalibrate_batchnorm(module: torch.nn.Module, data: np.ndarray) -> int:
    bns = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average over the batches below
    module.train()
    used = 0
    for start in range(0, min(len(data), BATCH * BATCHES), BATCH):
        batch = torch.from_numpy(data[start:start + BATCH])
        module(batch)
        used += len(batch)
    module.eval()
    return used

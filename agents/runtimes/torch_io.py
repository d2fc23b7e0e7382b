"""Numpy in and out of a torch.export program, shared by the torch CPU and CUDA runtimes."""

from __future__ import annotations

import numpy as np
import torch

from agents.arrays import contiguous


def as_arrays(output) -> list[np.ndarray]:
    """Every tensor a program returns (a tensor, a tuple, a dict of tensors), in order."""
    from torch.utils._pytree import tree_leaves
    return [leaf.detach().float().cpu().numpy() if leaf.dtype in (torch.float16, torch.bfloat16)
            else leaf.detach().cpu().numpy()
            for leaf in tree_leaves(output) if isinstance(leaf, torch.Tensor)]


def positional(inputs: dict[str, np.ndarray], device: str = "cpu", dtype=None) -> list:
    """A torch.export program takes its inputs positionally, in the order the model
    declares them (the eval pack's and the payload's order); floats move to `dtype`."""
    tensors = []
    for array in inputs.values():
        tensor = torch.from_numpy(contiguous(array)).to(device)
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensors.append(tensor)
    return tensors

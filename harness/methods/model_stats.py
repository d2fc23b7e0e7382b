"""What a method did to the model: parameters, multiply-accumulates, weight sparsity, and
how small the artifact gets once compressed (the only size unstructured sparsity buys on a
dense runtime)."""

from __future__ import annotations

import zlib
from pathlib import Path

import torch

COMPRESS_LEVEL = 6       # gzip's default
CHUNK = 1 << 20


def _weights(module: torch.nn.Module):
    for layer in module.modules():
        if isinstance(layer, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d,
                              torch.nn.Linear)):
            yield layer.weight


def weight_sparsity(module: torch.nn.Module) -> float | None:
    """Fraction of exactly-zero weights over conv and linear layers."""
    zeros = total = 0
    for weight in _weights(module):
        zeros += int((weight == 0).sum())
        total += weight.numel()
    return zeros / total if total else None


def params_and_macs(module: torch.nn.Module, example) -> tuple[int, int | None]:
    """Parameters, and multiply-accumulates of one forward on `example` (a tensor or a
    tuple of positional inputs; None where the counter cannot trace the model)."""
    params = sum(p.numel() for p in module.parameters())
    try:
        import torch_pruning as tp
        macs, _ = tp.utils.count_ops_and_params(module, example)
        # The counter hooks nn.Conv/nn.Linear modules: a traced graph (a PT2E-converted
        # model) has none and counts 0, which is unknown, not free.
        return params, int(macs) if macs else None
    except Exception:  # noqa: BLE001 - a model the counter cannot trace still has params
        return params, None


def compressed_size(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        packer = zlib.compressobj(COMPRESS_LEVEL)
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                total += len(packer.compress(chunk))
        total += len(packer.flush())
    return total


def model_stats(module: torch.nn.Module, example) -> dict:
    if isinstance(example, tuple) and len(example) == 1:
        example = example[0]
    params, macs = params_and_macs(module, example)
    sparsity = weight_sparsity(module)
    return {"params": params, "macs": macs,
            "sparsity": round(sparsity, 6) if sparsity is not None else None}


def file_stats(path: Path) -> dict:
    """Parameters and weight sparsity of an ONNX file's initializers (MACs unknown)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    params = zeros = weights = 0
    for tensor in model.graph.initializer:
        array = numpy_helper.to_array(tensor)
        params += array.size
        if array.ndim >= 2 and array.dtype.kind == "f":
            weights += array.size
            zeros += int(np.count_nonzero(array == 0))
    return {"params": params, "macs": None,
            "sparsity": round(zeros / weights, 6) if weights else None}

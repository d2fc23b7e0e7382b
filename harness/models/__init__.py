"""Model sources: `builtin:NAME`, `torchvision:ARCH`, `module:pkg.mod:factory`.

Each resolves to an fp32 torch module in eval mode plus a digest of its weights, which is
part of every variant key built from it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from harness.matrix.schema import ModelSpec


@dataclass
class LoadedModel:
    name: str
    module: torch.nn.Module
    input_shape: tuple[int, ...]
    weights_digest: str
    info: dict = field(default_factory=dict)  # provenance: training accuracy, BN recalibration


def weights_digest(module: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer, in state_dict order."""
    h = hashlib.sha256()
    for key, tensor in module.state_dict().items():
        h.update(key.encode())
        t = tensor.detach().cpu().contiguous()
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


SOURCE_MODULES = {"builtin": "harness.models.builtin",
                  "torchvision": "harness.models.torchvision_source",
                  "module": "harness.models.module_source"}


def source_module(source: str) -> str | None:
    """The module that loads this source (None for a module handed to the Python API)."""
    return SOURCE_MODULES.get(source.partition(":")[0])


def load_model(spec: ModelSpec, base_dir: Path, cache_dir: Path) -> LoadedModel:
    scheme, _, rest = spec.source.partition(":")
    if scheme == "builtin":
        from harness.models.builtin import load_builtin
        module, shape, info = load_builtin(rest, cache_dir)
    elif scheme == "torchvision":
        from harness.models.torchvision_source import load_torchvision
        module, info = load_torchvision(rest, spec, base_dir)
        shape = tuple(spec.input_shape)
    else:
        from harness.models.module_source import load_module_factory
        module, info = load_module_factory(rest, spec, base_dir)
        shape = tuple(spec.input_shape)
    if spec.input_shape is not None and tuple(spec.input_shape) != tuple(shape):
        raise ValueError(f"model {spec.name}: input_shape {spec.input_shape} does not match the "
                         f"builtin model's {list(shape)}")
    module.eval()
    return LoadedModel(name=spec.name, module=module, input_shape=tuple(shape),
                       weights_digest=weights_digest(module), info=info)

"""What every model source produces, and what a source plugin provides.

A source plugin (one module per scheme, registered in harness.models) has
- `check(ref, spec, base_dir) -> SourceProblem | None`: can this be built? Run at plan time,
  so a matrix whose model cannot be resolved is refused before anything runs. Cheap where a
  cheap check exists (no torch import for names and files).
- `load(ref, spec, base_dir, cache_dir) -> (module, input_shape, info)`: the fp32 torch
  module, its input shape and provenance.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LoadedModel:
    name: str
    module: object                 # torch.nn.Module in eval mode
    input_shape: tuple[int, ...]
    weights_digest: str
    info: dict = field(default_factory=dict)  # provenance: training accuracy, BN recalibration
    inputs: tuple = ()             # agents.cell.InputSpec per input, in the model's order

    def __post_init__(self):
        if not self.inputs:
            from agents.cell import specs_for
            self.inputs = specs_for(self.input_shape)


@dataclass(frozen=True)
class SourceProblem:
    """Why a model cannot be built: the model's field at fault, what is wrong, what is
    allowed."""
    field: str                     # source | weights | input_shape | ...
    message: str
    allowed: str | None = None


def weights_digest(module) -> str:
    """sha256 over every parameter and buffer, in state_dict order."""
    import torch

    h = hashlib.sha256()
    for key, tensor in module.state_dict().items():
        h.update(key.encode())
        t = tensor.detach().cpu().contiguous()
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def weights_file_problem(weights: str | None, base_dir: Path) -> SourceProblem | None:
    """A weights path (relative to the matrix file) that is missing or not a file."""
    if weights is None or weights == "DEFAULT":
        return None
    path = Path(weights) if Path(weights).is_absolute() else Path(base_dir) / weights
    if not path.exists():
        return SourceProblem("weights", f"{path} does not exist",
                             "null, DEFAULT (torchvision), or the path of a state_dict "
                             ".pt/.pth or .safetensors file, relative to the matrix file")
    if not path.is_file():
        return SourceProblem("weights", f"{path} is not a file",
                             "the path of a state_dict .pt/.pth or .safetensors file")
    return None

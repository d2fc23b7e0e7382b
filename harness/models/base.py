"""What every model source produces, and what a source plugin provides.

A source plugin (one module per scheme, registered in harness.models) has
- FORM, REF: how the source is written (`onnx:PATH`) and what may follow the scheme;
- KIND: "module" (a torch module: every format and model-level method can start from it)
  or "file" (an existing model file: format-level methods only);
- TASKS, DEFAULT_TASK: the tasks it can serve;
- `check(ref, spec, base_dir) -> SourceProblem | None`: can this be built? Run at plan time,
  so a matrix whose model cannot be resolved is refused before anything runs. Cheap where a
  cheap check exists (no torch import for names and files);
- `inputs(ref, spec, base_dir) -> [InputSpec]`: the model's named inputs, from the matrix
  or read from the model (raises SourceError);
- `load(ref, spec, base_dir, cache_dir) -> (module or None, info)`: the fp32 torch module (a
  file source returns None and puts the file's path in info["file"]) and provenance.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LoadedModel:
    name: str
    module: object                 # torch.nn.Module in eval mode; None for a file source
    input_shape: tuple[int, ...]   # the first input's dims after the batch (single-input view)
    weights_digest: str            # of the module's tensors, or of the file's bytes
    info: dict = field(default_factory=dict)  # provenance: training accuracy, BN recalibration
    inputs: tuple = ()             # agents.cell.InputSpec per input, in the model's order
    task: str = "classification"
    file: str | None = None        # the model file of a file source (onnx:)

    def __post_init__(self):
        if not self.inputs:
            from agents.cell import specs_for
            self.inputs = specs_for(self.input_shape)


class SourceError(ValueError):
    """A model's inputs cannot be resolved: carries the SourceProblem (field, message)."""

    def __init__(self, problem: "SourceProblem"):
        super().__init__(problem.message)
        self.problem = problem


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


def declared_inputs(spec) -> list | None:
    """The inputs the matrix gives (`inputs:`, or the `input_shape:` shorthand), as
    agents.cell.InputSpec, or None."""
    from agents.cell import BATCH_AXIS, InputSpec

    if spec.inputs:
        specs = []
        for name, decl in spec.inputs.items():
            low, high = decl.range if decl.range is not None else (None, None)
            specs.append(InputSpec(name, decl.dtype, tuple(decl.shape), low, high, decl.fill))
        return specs
    if spec.input_shape:
        return [InputSpec("input", "float32", (BATCH_AXIS, *spec.input_shape))]
    return None


def single_input_shape(inputs) -> tuple[int, ...]:
    """The dims after the batch of the first input (what the single-input methods use)."""
    if not inputs:
        return ()
    dims = list(inputs[0].dims)
    if inputs[0].batch_axis is not None:
        dims.pop(inputs[0].batch_axis)
    return tuple(d for d in dims)

"""`onnx:PATH`: an ONNX file the user already has (relative to the matrix file).

Its inputs, their dtypes and dims are read from the graph. A dim the file names
(`batch`, `seq`, an exporter's `s0`) stays a named axis; a dynamic dim it leaves unnamed
(`?`, -1, 0) must be named or pinned by the matrix's `inputs:` (so must a batch axis the
file names otherwise: the batch is declared, never guessed). Format-level methods start
from the file (ONNX Runtime's quantizers, OpenVINO's converter and NNCF, TensorRT's ONNX
parser); the torch and tflite formats and the model-level methods need a torch module and
are skipped with that reason. The fp32 reference outputs come from ONNX Runtime on this
file. Its digest is the sha256 of the file and of its external data files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness.models.base import SourceError, SourceProblem

FORM = "onnx:PATH"
REF = r"[^\s]+"  # what may follow the scheme: a path
KIND = "file"
TASKS = ("classification", "embedding", "generic")
DEFAULT_TASK = "generic"
ALLOWED = "onnx:PATH, the path of an .onnx file relative to the matrix file"
# ONNX element types the harness feeds -> numpy names
ELEM_TYPES = {1: "float32", 10: "float16", 7: "int64", 6: "int32", 3: "int8", 2: "uint8",
              9: "bool"}


def resolve_path(ref: str, base_dir: Path) -> Path:
    path = Path(ref)
    return path if path.is_absolute() else Path(base_dir) / path


def _load(path: Path):
    import onnx

    return onnx.load(str(path), load_external_data=False)


def check(ref: str, spec, base_dir: Path) -> SourceProblem | None:
    path = resolve_path(ref, base_dir)
    if not path.exists():
        return SourceProblem("source", f"{path} does not exist", ALLOWED)
    if not path.is_file():
        return SourceProblem("source", f"{path} is not a file", ALLOWED)
    try:
        model = _load(path)
    except Exception as exc:  # noqa: BLE001 - protobuf's decode errors vary
        return SourceProblem("source", f"{path} is not an ONNX model ({type(exc).__name__})",
                             ALLOWED)
    if not len(model.graph.node) or not len(model.graph.output):
        return SourceProblem("source", f"{path} is not an ONNX model (no graph)", ALLOWED)
    if spec.weights:
        return SourceProblem("weights", "an ONNX file carries its own weights", "null")
    return None


def _graph_dims(value_info) -> list:
    dims = []
    for d in value_info.type.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param:
            dims.append(d.dim_param)
        else:
            dims.append(None)  # dynamic and unnamed
    return dims


def inputs(ref: str, spec, base_dir: Path) -> list:
    from agents.cell import InputSpec
    from harness.models.base import declared_inputs

    model = _load(resolve_path(ref, base_dir))
    weights = {init.name for init in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in weights]
    declared = {s.name: s for s in declared_inputs(spec) or []}
    names = [i.name for i in graph_inputs]
    unknown = [n for n in declared if n not in names]
    if unknown:
        raise SourceError(SourceProblem(f"inputs.{unknown[0]}", f"the model has no input "
                                        f"{unknown[0]!r}", f"its inputs: {', '.join(names)}"))
    specs = []
    for graph_input in graph_inputs:
        name = graph_input.name
        elem = graph_input.type.tensor_type.elem_type
        if elem not in ELEM_TYPES:
            raise SourceError(SourceProblem(f"inputs.{name}", f"input {name!r} has ONNX element "
                                            f"type {elem}, which the harness cannot feed",
                                            ", ".join(ELEM_TYPES.values())))
        dtype, dims = ELEM_TYPES[elem], _graph_dims(graph_input)
        given = declared.get(name)
        if given is not None:
            if given.dtype != dtype:
                raise SourceError(SourceProblem(f"inputs.{name}.dtype", f"the model's input "
                                                f"{name!r} is {dtype}, not {given.dtype}", dtype))
            dims = _merged(name, dims, list(given.dims))
            specs.append(InputSpec(name, dtype, tuple(dims), given.low, given.high, given.fill))
            continue
        if None in dims:
            raise SourceError(SourceProblem(
                f"inputs.{name}", f"input {name!r} has dynamic dims the file leaves unnamed "
                f"({['?' if d is None else d for d in dims]})",
                "declare its shape under the model's inputs:, with a name (batch, seq, ...) or "
                "a number for each dynamic dim"))
        specs.append(InputSpec(name, dtype, tuple(dims)))
    return specs


def _merged(name: str, file_dims: list, matrix_dims: list) -> list:
    """The matrix's dims where the file leaves them open; the file's numbers must stay."""
    if len(file_dims) != len(matrix_dims):
        raise SourceError(SourceProblem(f"inputs.{name}.shape", f"input {name!r} has "
                                        f"{len(file_dims)} dims in the file, not "
                                        f"{len(matrix_dims)}",
                                        f"{['?' if d is None else d for d in file_dims]}"))
    for i, (theirs, ours) in enumerate(zip(file_dims, matrix_dims)):
        if isinstance(theirs, int) and theirs != ours:
            raise SourceError(SourceProblem(f"inputs.{name}.shape[{i}]", f"the file fixes "
                                            f"this dim of {name!r} at {theirs}", str(theirs)))
    return matrix_dims


def file_digest(path: Path) -> str:
    """sha256 over the file and every external data file its tensors name."""
    import onnx

    h = hashlib.sha256(path.read_bytes())
    model = onnx.load(str(path), load_external_data=False)
    locations = sorted({entry.value for tensor in model.graph.initializer
                        for entry in tensor.external_data if entry.key == "location"})
    for location in locations:
        h.update(location.encode() + (path.parent / location).read_bytes())
    return h.hexdigest()


def load(ref: str, spec, base_dir: Path, cache_dir: Path):
    path = resolve_path(ref, base_dir).resolve()
    return None, {"source": f"onnx:{ref}", "file": str(path), "file_sha256": file_digest(path)}

"""Eval packs and cell payloads for tests that hand the worker a model they made."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from agents.cell import BATCH_AXIS, CellPayload, FileRef, InputSpec
from agents.evalpack import write_pack


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_test_pack(path: Path, inputs: dict[str, np.ndarray],
                    references: list[np.ndarray] | None = None,
                    labels: np.ndarray | None = None, task: str = "classification") -> Path:
    """A pack of batch-first float inputs (one shape); references[k]: output k per sample."""
    specs = [InputSpec(name, array.dtype.name, (BATCH_AXIS, *array.shape[1:]))
             for name, array in inputs.items()]
    samples = len(next(iter(inputs.values())))
    write_pack(Path(path), task=task, inputs=specs, shapes=[{}], test_inputs=[inputs],
               references=None if references is None else [references], labels=labels,
               samples=samples)
    return Path(path)


def payload(artifact: Path, pack: Path, measure: dict, runtime: str = "onnxruntime",
            cell_id: str = "m/fp32/onnx/intel-cpu", device: str = "intel-cpu",
            precision: str = "fp32", **extra) -> CellPayload:
    return CellPayload(cell_id=cell_id, device=device, runtime=runtime, precision=precision,
                       artifact=FileRef(str(artifact), sha(artifact)),
                       eval_pack=FileRef(str(pack), sha(pack)), measure=measure, **extra)


def manifest_payload(manifest: dict, measure: dict, device: str = "intel-cpu") -> CellPayload:
    """The payload a sweep would send for a built variant."""
    return CellPayload.from_manifest(
        f"{manifest['model']}/{manifest['method']}/{manifest['format']}/{device}", device,
        manifest, measure)


def single_input_spec(shape=(1, 32, 32), name: str = "input"):
    """The ExportSpec of a one-float-input model (the digits CNN's by default)."""
    from harness.formats.export_spec import ExportSpec

    spec = InputSpec(name, "float32", (BATCH_AXIS, *shape))
    return ExportSpec(inputs=(spec,), profile={"batch": (1, 8, 8)})

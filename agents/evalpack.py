"""The eval pack: what an agent needs to measure a cell's quality and to feed its timed
loops, with no model code. One .npz file:

    meta          JSON: version, task, input specs, the shapes of the named axes, outputs
    s{j}/in/NAME  shape j's test inputs in the model's own layout, the batch axis holding
                  the samples (an input without a batch axis is stored once, as fed)
    s{j}/out/K    the fp32 source's output K for each sample, stacked on a new first axis
                  (each computed at batch 1)
    labels        per-sample labels, when the data has them

Shapes: one entry per combination of the values measure.shapes sweeps ({"seq": 32}, ...),
or a single {} for a model without such axes. Quality is measured at batch 1, sample by
sample, so the reference needs no knowledge of where an output keeps its batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from agents.arrays import contiguous
from agents.cell import InputSpec, shape_label

PACK_VERSION = 2


def take(array: np.ndarray, spec: InputSpec, index) -> np.ndarray:
    axis = spec.batch_axis
    if axis is None:
        return array
    return np.take(array, index, axis=axis)


def samples_in(specs, arrays: dict[str, np.ndarray]) -> int:
    """How many samples arrays in the model's layout hold (along the first batch axis)."""
    for spec in specs:
        if spec.batch_axis is not None:
            return int(arrays[spec.name].shape[spec.batch_axis])
    return 1


class EvalPack:
    def __init__(self, path: str | Path):
        # Every array is read once, here (in the worker's setup, before its memory baseline):
        # an npz member is re-read and CRC-checked on each access, which cost the digits
        # quality pass 0.27 s of its 0.38 s when each sample read its array again.
        with np.load(path) as data:
            self._data = {name: data[name] for name in data.files}
        meta = json.loads(str(self._data["meta"]))
        if meta.get("version") != PACK_VERSION:
            raise ValueError(f"{path}: eval pack version {meta.get('version')}; this agent "
                             f"reads {PACK_VERSION} (rebuild the variant)")
        self.meta = meta
        self.task: str = meta["task"]
        self.inputs = [InputSpec.from_json(s) for s in meta["inputs"]]
        self.shapes: list[dict] = meta["shapes"]
        self.outputs: int = meta["outputs"]
        self.labels = self._data.get("labels")

    @property
    def samples(self) -> int:
        return int(self.meta["samples"])

    def shape_label(self, j: int) -> str:
        return shape_label(self.shapes[j])

    def _inputs(self, j: int) -> dict[str, np.ndarray]:
        return {s.name: self._data[f"s{j}/in/{s.name}"] for s in self.inputs}

    def sample(self, j: int, i: int) -> dict[str, np.ndarray]:
        """Sample i of shape j as a batch of 1."""
        return {s.name: contiguous(take(a, s, [i]))
                for s, a in zip(self.inputs, self._inputs(j).values())}

    def batch(self, j: int, size: int) -> dict[str, np.ndarray]:
        """A batch of `size` samples of shape j (cycling through the test samples)."""
        index = np.arange(size) % self.samples
        return {s.name: contiguous(take(a, s, index))
                for s, a in zip(self.inputs, self._inputs(j).values())}

    def reference(self, j: int) -> list[np.ndarray]:
        """The fp32 source's outputs for shape j: one array per output, samples first."""
        return [self._data[f"s{j}/out/{k}"] for k in range(self.outputs)]


def write_pack(path: Path, *, task: str, inputs: list[InputSpec], shapes: list[dict],
               test_inputs: list[dict[str, np.ndarray]],
               references: list[list[np.ndarray]] | None, labels: np.ndarray | None,
               samples: int, source: dict | None = None) -> None:
    """Write a pack atomically. test_inputs[j] and references[j] belong to shapes[j];
    references None: inputs only (latency alone, as for NAS candidates)."""
    arrays: dict[str, np.ndarray] = {}
    references = references if references is not None else [[] for _ in test_inputs]
    for j, (inputs_j, refs_j) in enumerate(zip(test_inputs, references)):
        for name, array in inputs_j.items():
            arrays[f"s{j}/in/{name}"] = contiguous(array)
        for k, ref in enumerate(refs_j):
            arrays[f"s{j}/out/{k}"] = contiguous(ref)
    if labels is not None:
        arrays["labels"] = np.asarray(labels)
    outputs = len(references[0]) if references else 0
    meta = {"version": PACK_VERSION, "task": task, "inputs": [s.to_json() for s in inputs],
            "shapes": shapes, "outputs": outputs, "samples": int(samples),
            "labelled": labels is not None, "source": source or {}}
    arrays["meta"] = np.array(json.dumps(meta))
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)

"""The eval pack of a model on a dataset (the format: agents/evalpack.py): its test inputs
per shape and the fp32 source's outputs for each test sample, computed at batch 1. One per
(model weights, inputs, dataset, task, shapes)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from agents.artifacts import sha256_file
from agents.evalpack import PACK_VERSION, EvalPack, write_pack


def pack_modules(dataset) -> list[str]:
    """The code that makes a pack (its digest is in the key: a pack written by older code
    is never reused): this module, the fp32 reference, the dataset's module."""
    from harness.data import DATASETS

    modules = ["harness.build.eval_pack", "harness.models.reference", "harness.data.base"]
    kind = DATASETS.get(dataset.name.partition(":")[0])
    return modules + ([kind] if kind else [])


def _key(loaded, dataset, task: str, shapes: list[dict]) -> str:
    from harness.build.keys import code_digest

    h = hashlib.sha256()
    h.update(json.dumps({"weights": loaded.weights_digest, "dataset": dataset.name,
                         "inputs": [s.to_json() for s in loaded.inputs], "task": task,
                         "shapes": shapes, "version": PACK_VERSION,
                         "code": code_digest(pack_modules(dataset))},
                        sort_keys=True).encode())
    for array in dataset.test_arrays().values():
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:20]


def eval_pack(loaded, dataset, cache: Path, task: str = "classification",
              shapes: list[dict] | None = None) -> tuple[Path, dict]:
    from harness.models.reference import reference_outputs

    shapes = shapes or [{}]
    path = Path(cache) / "eval" / f"{_key(loaded, dataset, task, shapes)}.npz"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        inputs = [dataset.test_arrays(shape) for shape in shapes]
        references = [reference_outputs(loaded, arrays) for arrays in inputs]
        write_pack(path, task=task, inputs=loaded.inputs, shapes=shapes, test_inputs=inputs,
                   references=references, labels=dataset.test_y,
                   samples=dataset.test_samples, source={"weights": loaded.weights_digest})
    pack = EvalPack(path)
    reference_top1 = None
    if pack.labels is not None and task == "classification":
        logits = pack.reference(0)[0].reshape(pack.samples, -1)
        reference_top1 = float(np.mean(logits.argmax(1) == pack.labels.reshape(-1)))
    return path, {"path": str(path), "sha256": sha256_file(path), "dataset": dataset.name,
                  "samples": pack.samples, "labelled": pack.labels is not None,
                  "reference_top1": reference_top1, "task": task}

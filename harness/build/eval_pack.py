"""The eval pack: test inputs, labels and the fp32 source's outputs, which is what an agent
needs for quality and fidelity without any model code. One per (model weights, dataset)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from agents.artifacts import sha256_file

REFERENCE_BATCH = 32


def eval_pack(loaded, dataset, cache: Path) -> tuple[Path, dict]:
    import torch

    key = hashlib.sha256(f"{loaded.weights_digest}:{dataset.name}:"
                         f"{hashlib.sha256(dataset.test_x.tobytes()).hexdigest()}".encode()
                         ).hexdigest()[:20]
    path = Path(cache) / "eval" / f"{key}.npz"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with torch.no_grad():
            reference = torch.cat([loaded.module(torch.from_numpy(
                dataset.test_x[i:i + REFERENCE_BATCH]))
                for i in range(0, len(dataset.test_x), REFERENCE_BATCH)]).numpy()
        arrays = {"test_x": dataset.test_x, "reference": reference}
        if dataset.test_y is not None:
            arrays["test_y"] = dataset.test_y
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)
    reference = np.load(path)["reference"]
    ref_top1 = None
    if dataset.test_y is not None:
        ref_top1 = float(np.mean(reference.argmax(1) == dataset.test_y))
    return path, {"path": str(path), "sha256": sha256_file(path), "dataset": dataset.name,
                  "samples": int(len(dataset.test_x)), "labelled": dataset.labelled,
                  "reference_top1": ref_top1}

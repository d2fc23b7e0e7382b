"""Top-1/top-5 on labelled data and fidelity to the fp32 source, through the same session
that was timed."""

from __future__ import annotations

import numpy as np

EVAL_BATCH = 16


def run_batched(run, x: np.ndarray, batch: int = EVAL_BATCH) -> np.ndarray:
    return np.concatenate([np.asarray(run(x[i:i + batch]), dtype=np.float32)
                           for i in range(0, len(x), batch)])


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def fidelity(outputs: np.ndarray, reference: np.ndarray) -> dict:
    out = outputs.reshape(len(outputs), -1).astype(np.float64)
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    cos = np.sum(out * ref, 1) / (np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1) + 1e-30)
    noise = np.sum((out - ref) ** 2)
    return {
        "fidelity_top1_agreement": float(np.mean(out.argmax(1) == ref.argmax(1))),
        "fidelity_max_abs_err": float(np.max(np.abs(out - ref))),
        "fidelity_cosine_min": float(cos.min()),
        "fidelity_sqnr_db": float(10 * np.log10(np.sum(ref ** 2) / noise)) if noise > 0 else None,
    }


def evaluate(run, x: np.ndarray, labels: np.ndarray | None, reference: np.ndarray) -> dict:
    outputs = run_batched(run, x)
    result = fidelity(outputs, reference)
    result["accuracy_samples"] = int(len(x))
    if labels is not None:
        result["accuracy_top1"] = topk_accuracy(outputs, labels, 1)
        result["accuracy_top5"] = topk_accuracy(outputs, labels, 5)
    return result

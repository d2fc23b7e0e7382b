"""Quality of a variant's outputs, through the same session that was timed: against labels
where the data has them, and as fidelity to the fp32 source's outputs always.

Evaluated sample by sample at batch 1 (the eval pack's reference is per sample), so no
output's batch axis needs to be known. What each task reports:

- classification: top1 / top5 on labels; top1_agreement with the fp32 source's argmax
  (output 0's last axis)
- embedding: cosine_mean / cosine_min of output 0 against the source's
- generic (and every task): per output K, outK_cosine_min, outK_sqnr_db, outK_max_abs_err;
  over all outputs fidelity_cosine_min (worst), fidelity_sqnr_db (worst),
  fidelity_max_abs_err (largest)

Which of these gates a pick, and in which direction, is the task plugin's business
(harness/tasks); this module only measures."""

from __future__ import annotations

import numpy as np

TASKS = ("classification", "embedding", "generic")


def _flat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.stack([np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays])


def _cosines(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1)
    dot = np.sum(out * ref, axis=1)
    # two all-zero vectors agree perfectly; one zero against a non-zero one does not
    return np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0),
                    np.where(np.linalg.norm(out - ref, axis=1) == 0, 1.0, 0.0))


def _sqnr_db(out: np.ndarray, ref: np.ndarray) -> float | None:
    noise = float(np.sum((out - ref) ** 2))
    signal = float(np.sum(ref ** 2))
    if noise == 0:
        return None  # identical: no finite figure
    return 10 * np.log10(signal / noise) if signal > 0 else float("-inf")


def fidelity(outputs: list[list[np.ndarray]], references: list[np.ndarray]) -> dict:
    """outputs[i][k]: output k of sample i; references[k]: output k of every sample."""
    metrics: dict = {}
    cosines, sqnrs, errors = [], [], []
    for k, ref in enumerate(references):
        out = _flat([sample[k] for sample in outputs])
        want = ref.reshape(len(ref), -1).astype(np.float64)
        if out.shape != want.shape:
            raise ValueError(f"output {k}: {out.shape[1]} values per sample, the fp32 source "
                             f"gives {want.shape[1]}")
        cos = float(_cosines(out, want).min())
        sqnr = _sqnr_db(out, want)
        err = float(np.max(np.abs(out - want))) if out.size else 0.0
        metrics |= {f"out{k}_cosine_min": cos, f"out{k}_sqnr_db": sqnr,
                    f"out{k}_max_abs_err": err}
        cosines.append(cos)
        errors.append(err)
        if sqnr is not None:
            sqnrs.append(sqnr)
    metrics["fidelity_cosine_min"] = min(cosines) if cosines else None
    metrics["fidelity_sqnr_db"] = min(sqnrs) if sqnrs else None
    metrics["fidelity_max_abs_err"] = max(errors) if errors else None
    return metrics


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    logits = logits.reshape(len(logits), -1)
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels.reshape(-1)[:, None], axis=1)))


def task_metrics(task: str, outputs: list[list[np.ndarray]], references: list[np.ndarray],
                 labels: np.ndarray | None) -> dict:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} (allowed: {', '.join(TASKS)})")
    metrics = fidelity(outputs, references)
    first = _flat([sample[0] for sample in outputs])
    ref0 = references[0].reshape(len(references[0]), -1).astype(np.float64)
    if task == "classification":
        metrics["top1_agreement"] = float(np.mean(first.argmax(1) == ref0.argmax(1)))
        if labels is not None:
            metrics["top1"] = topk_accuracy(first, labels, 1)
            metrics["top5"] = topk_accuracy(first, labels, 5)
    elif task == "embedding":
        cos = _cosines(first, ref0)
        metrics |= {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min())}
    metrics["samples"] = len(outputs)
    return metrics


def run_samples(run, samples: list[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
    """Every sample through `run` at batch 1: each sample's outputs."""
    return [[np.asarray(o) for o in run(sample)] for sample in samples]


# The measurement columns the metrics fill (the rest go to the long metrics table).
COLUMNS = {"top1": "accuracy_top1", "top5": "accuracy_top5",
           "top1_agreement": "fidelity_top1_agreement",
           "fidelity_cosine_min": "fidelity_cosine_min", "fidelity_sqnr_db": "fidelity_sqnr_db",
           "fidelity_max_abs_err": "fidelity_max_abs_err", "samples": "accuracy_samples"}


def columns(metrics: dict) -> dict:
    return {column: metrics[name] for name, column in COLUMNS.items() if name in metrics}

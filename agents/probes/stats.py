"""Summary statistics of raw latency samples (pure numpy: agents stay light)."""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054


def median_ci(samples: np.ndarray, z: float = Z95) -> tuple[float, float]:
    """Distribution-free 95% confidence interval of the median from order statistics
    (normal approximation to the binomial rank distribution)."""
    n = len(samples)
    if n < 6:
        return float("-inf"), float("inf")
    ordered = np.sort(samples)
    half = z * math.sqrt(n) / 2
    lo = max(int(math.floor(n / 2 - half)) - 1, 0)
    hi = min(int(math.ceil(n / 2 + half)), n - 1)
    return float(ordered[lo]), float(ordered[hi])


def summarize(samples_ms: np.ndarray, batch_size: int) -> dict:
    s = np.asarray(samples_ms, dtype=np.float64)
    p50, p90, p95, p99 = np.percentile(s, [50, 90, 95, 99])
    mean = float(s.mean())
    std = float(s.std(ddof=1)) if len(s) > 1 else 0.0
    lo, hi = median_ci(s)
    return {
        "latency_p50_ms": float(p50), "latency_p90_ms": float(p90),
        "latency_p95_ms": float(p95), "latency_p99_ms": float(p99),
        "latency_mean_ms": mean, "latency_std_ms": std,
        "latency_min_ms": float(s.min()), "latency_cv": std / mean if mean > 0 else None,
        "latency_p50_ci_low_ms": lo if math.isfinite(lo) else None,
        "latency_p50_ci_high_ms": hi if math.isfinite(hi) else None,
        "iterations": int(len(s)),
        "throughput_ips": batch_size * 1000.0 / float(p50) if p50 > 0 else None,
    }


def process_median_ci(groups: list[np.ndarray], n_boot: int = 1000, seed: int = 0,
                      level: float = 0.95) -> tuple[float, float]:
    """95% CI of the pooled median when the samples come from several processes.

    Samples within one process are not independent of each other: a process keeps its memory
    layout, core and cache neighbours for its whole life, and on a shared host whole
    processes come out several percent apart. The order-statistic CI treats every sample as
    independent and is then far too narrow to cover a second process's median. This is a
    cluster bootstrap (resample whole processes with replacement, take the median of the
    pooled samples), widened to at least the order-statistic CI of the pooled samples. With
    few processes it spans about the range of the process medians, which is the honest
    answer."""
    groups = [np.asarray(g, dtype=np.float64) for g in groups if len(g)]
    pooled = np.concatenate(groups) if groups else np.empty(0)
    lo, hi = median_ci(pooled)
    if len(groups) < 2:
        return lo, hi
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(groups), size=(n_boot, len(groups)))
    medians = np.array([np.median(np.concatenate([groups[i] for i in row])) for row in picks])
    tail = (1 - level) / 2 * 100
    b_lo, b_hi = np.percentile(medians, [tail, 100 - tail])
    return min(lo, float(b_lo)), max(hi, float(b_hi))

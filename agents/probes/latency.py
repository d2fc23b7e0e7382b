"""Timed single inferences with warm-up and a stopping rule.

Rule (after MLPerf LoadGen's min-duration/min-query and trtexec's duration/iteration
defaults): warm up for `warmup_s` (at least 5 calls), then time until both `min_iterations`
and `min_seconds` are reached AND the 95% CI of the median is within `ci_rel_width` of it,
or until `max_seconds` passes. Every raw sample is kept.

A runtime that times its own inferences (OpenVINO's InferRequest.latency, as its
benchmark_app reports) passes `runtime_clock`: the samples are then the runtime's, and the
host-timed calls around them are kept too, so the Python call overhead stays visible.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from agents.probes.stats import median_ci

MIN_WARMUP_CALLS = 5
CI_CHECK_EVERY = 25


@dataclass
class LatencyRun:
    samples_ms: np.ndarray
    stop_reason: str          # ci_target | max_seconds | max_iterations
    warmup_calls: int
    host_samples_ms: np.ndarray | None = None  # only when the samples are a runtime's clock


def time_calls(fn: Callable[[], object], *, warmup_s: float, min_iterations: int,
               min_seconds: float, max_seconds: float, ci_rel_width: float,
               max_iterations: int = 1_000_000,
               runtime_clock: Callable[[], float] | None = None) -> LatencyRun:
    clock = time.perf_counter
    warm_start = clock()
    warmup_calls = 0
    while warmup_calls < MIN_WARMUP_CALLS or clock() - warm_start < warmup_s:
        fn()
        warmup_calls += 1

    samples: list[float] = []
    host: list[float] = []
    started = clock()
    stop_reason = "max_iterations"
    while len(samples) < max_iterations:
        t0 = clock()
        fn()
        t1 = clock()
        if runtime_clock is None:
            samples.append((t1 - t0) * 1000.0)
        else:
            samples.append(runtime_clock())
            host.append((t1 - t0) * 1000.0)
        elapsed = t1 - started
        if elapsed >= max_seconds:
            stop_reason = "max_seconds"
            break
        n = len(samples)
        if n >= min_iterations and elapsed >= min_seconds and n % CI_CHECK_EVERY == 0:
            arr = np.asarray(samples)
            lo, hi = median_ci(arr)
            if (hi - lo) <= ci_rel_width * float(np.median(arr)):
                stop_reason = "ci_target"
                break
    return LatencyRun(np.asarray(samples, dtype=np.float64), stop_reason, warmup_calls,
                      np.asarray(host, dtype=np.float64) if runtime_clock else None)

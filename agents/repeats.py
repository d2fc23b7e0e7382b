"""Pool the results of one cell measured in several fresh worker processes.

`measure.processes: N` runs the worker N times back to back (pyperf's approach: a process's
memory layout, core and neighbours bias all of its samples alike, so only several
processes show how far a result moves). Accuracy is measured by the first process only; the
latency figures come from the pooled samples, with a CI that accounts for the processes
(`process_median_ci`), and each process's own p50 is kept."""

from __future__ import annotations

import dataclasses

import numpy as np

from agents.cell import CellResult
from agents.phases import summed
from agents.probes.stats import process_median_ci, summarize

# Figures every process measures afresh, and how to combine them.
_MAX = ("peak_rss_mb", "peak_rss_sampled_mb", "peak_device_mem_mb", "peak_device_mem_nvml_mb")
_MEAN = ("energy_mj_per_inference", "mean_power_mw", "energy_idle_mw")
_SUM = ("warmup_calls", "energy_window_s")


def _combined(rows: list[dict], names: tuple[str, ...], how) -> dict:
    out = {}
    for name in names:
        values = [r[name] for r in rows if r.get(name) is not None]
        if values:
            out[name] = how(values)
    return out


def _pool_batch(rows: list[dict], noisy_cv: float) -> dict:
    groups = [np.asarray(r["samples_ms"], dtype=np.float64) for r in rows]
    pooled = np.concatenate(groups)
    row = dict(rows[0])  # accuracy, precision, threads, includes: the first process's
    row |= summarize(pooled, row["batch_size"])
    lo, hi = process_median_ci(groups)
    row["latency_p50_ci_low_ms"] = lo if np.isfinite(lo) else None
    row["latency_p50_ci_high_ms"] = hi if np.isfinite(hi) else None
    row["latency_noisy"] = bool(row["latency_cv"] is not None and row["latency_cv"] > noisy_cv)
    row["samples_ms"] = pooled.tolist()
    row["samples_process"] = np.repeat(np.arange(len(groups)), [len(g) for g in groups]).tolist()
    row["processes"] = len(rows)
    row["latency_process_p50s_ms"] = [float(np.median(g)) for g in groups]
    row["stop_reason"] = ",".join(dict.fromkeys(r["stop_reason"] for r in rows))
    hosts = [r["host_latency_p50_ms"] for r in rows if r.get("host_latency_p50_ms") is not None]
    if hosts:
        row["host_latency_p50_ms"] = float(np.median(hosts))
    row |= _combined(rows, _MAX, max) | _combined(rows, _SUM, sum)
    row |= _combined(rows, _MEAN, lambda v: float(np.mean(v)))
    return row


def merge_processes(results: list[CellResult], noisy_cv: float = 0.1) -> CellResult:
    """One result from the ok results of the same cell's processes (in run order)."""
    first = results[0]
    by_row: dict[tuple, list[dict]] = {}
    for result in results:
        for row in result.measurements:
            row = dict(row, peak_rss_sampled_mb=result.peak_rss_sampled_mb)
            by_row.setdefault((row.get("shape", ""), row["batch_size"]), []).append(row)
    merged = dataclasses.replace(first)
    merged.measurements = [_pool_batch(rows, noisy_cv) for rows in by_row.values()]
    merged.wall_s = sum(r.wall_s or 0.0 for r in results)
    merged.phases = summed([r.phases for r in results])
    merged.processes = len(results)
    return merged

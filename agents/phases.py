"""Where a worker's wall time goes, phase by phase (stored per cell as `measure_phases`):
a sweep's overhead is then read from the database, not guessed.

Phases: `start` (process start, interpreter and the worker's imports, from the launcher's
clock to the worker's main), `setup` (artifact digests, device fingerprint, energy counter,
runtime import), `load` (open the session and its first call), `quality` (the accuracy or
fidelity pass), `timed` (warm-up and timed loops), `profile`, `scenarios`, and `other`
(what the launcher saw beyond those: writing the result, exit, teardown)."""

from __future__ import annotations

import time
from contextlib import contextmanager

MAIN_STARTED_KEY = "main_started_epoch"   # the worker's main, on the host's wall clock


class PhaseClock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - started


def with_launcher_view(phases: dict, launched_epoch: float, wall_s: float) -> dict:
    """The worker's phases plus what only the launcher can see: the time to the worker's
    main (`start`) and the rest of the wall time (`other`)."""
    phases = dict(phases or {})
    main_started = phases.pop(MAIN_STARTED_KEY, None)
    if main_started is not None:
        phases["start"] = max(0.0, main_started - launched_epoch)
    phases["other"] = max(0.0, wall_s - sum(phases.values()))
    return {k: round(v, 4) for k, v in phases.items()}


def summed(results_phases: list[dict]) -> dict:
    """Phases of several processes of one cell, added up."""
    total: dict[str, float] = {}
    for phases in results_phases:
        for k, v in (phases or {}).items():
            total[k] = total.get(k, 0.0) + v
    return total

"""What every runtime session is: load an artifact, run named inputs, report what it really
computed in. A runtime module subclasses Session and overrides what it does differently;
the worker uses only this interface.

    session.run({"input_ids": ids, "attention_mask": mask}) -> [output0, output1, ...]

Inputs are numpy arrays by name, of the dtypes the model declares (int64 stays int64);
outputs are every model output, in the model's order, as numpy arrays.
"""

from __future__ import annotations

from typing import Callable, ClassVar

import numpy as np

HOST_END_TO_END = "host end-to-end: numpy inputs to numpy outputs, one synchronous call"


class Session:
    precision: str = "fp32"   # what the runtime actually computes in: fp32 fp16 bf16 int8
    info: dict                # runtime name, version, threads, and what it decided
    # What one latency sample covers (stored beside every figure).
    latency_includes: ClassVar[str] = HOST_END_TO_END
    # A runtime that times its own inferences (OpenVINO's request timer) sets this to a
    # function returning the last call's milliseconds; the host-timed call is then kept
    # beside it.
    runtime_clock: Callable[[], float] | None = None

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def timed_call(self, inputs: dict[str, np.ndarray]) -> Callable[[], object]:
        """The call the latency loop times. A runtime may prepare once here what `run`
        would redo on every call (binding inputs, moving them to the device)."""
        run = self.run
        return lambda: run(inputs)

    def profiler(self):
        """This runtime's own per-layer profiler (agents/probes/profile.py), used in a pass
        of its own after the timed loop. Raises ProfileUnavailable with the reason when the
        runtime has none."""
        from agents.probes.profile import ProfileUnavailable
        raise ProfileUnavailable(f"the {self.info.get('runtime', 'runtime')} session has no "
                                 "per-layer profiler")

    def concurrent(self, inputs: dict[str, np.ndarray], concurrency: int | None,
                   threads: int | None):
        """The runtime's own concurrency for the throughput scenarios
        (agents/probes/scenarios.py): a Concurrency of callables, each safe on a thread of
        its own, running `inputs`. `concurrency` None: the runtime's throughput hint where
        it has one, else one request per core of the thread budget; `threads` None: every
        core of this host. Raises ScenarioUnavailable with the reason where there is none."""
        from agents.probes.scenarios import ScenarioUnavailable
        raise ScenarioUnavailable(f"the {self.info.get('runtime', 'runtime')} session has no "
                                  "concurrent path")

    def reset_device_peak(self) -> None:
        """Start a new peak-memory window on a device with its own memory."""

    def device_memory(self) -> dict:
        """Peak device memory since reset_device_peak (empty: the host's RSS is the
        memory)."""
        return {}


def check_inputs(inputs: dict[str, np.ndarray], names: list[str], runtime: str) -> None:
    """The same names the model has: a missing or extra input is a clear error."""
    missing = [n for n in names if n not in inputs]
    extra = [n for n in inputs if n not in names]
    if missing or extra:
        raise ValueError(f"{runtime}: the model's inputs are {names}; got {sorted(inputs)}"
                         + (f" (missing {missing})" if missing else "")
                         + (f" (unknown {extra})" if extra else ""))


def thread_budget(threads: int | None) -> int:
    """The threads a throughput scenario may use: as given, else every core here."""
    import os
    if threads:
        return threads
    if hasattr(os, "sched_getaffinity"):  # the cores this process may run on (Linux)
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def split_budget(concurrency: int | None, threads: int | None) -> tuple[int, int, str]:
    """(requests in flight, threads per request, where the number came from) for a runtime
    without a throughput hint: one single-threaded request per core of the budget."""
    budget = thread_budget(threads)
    if concurrency:
        return concurrency, max(1, budget // concurrency), f"measure: concurrency {concurrency}"
    return budget, 1, f"one single-threaded request per core of the {budget}-thread budget"

"""torch's own profiler (torch.profiler) around the cell's call, eager or compiled.

A layer is an operator call at the top of the program's execution: `aten::conv2d` in an
eager program, `onednn::qconv2d_pointwise` or `quantized::max_pool2d` inside an
inductor-compiled one. Wrappers (dynamo's cache lookup, the compiled region, the call of
the compiled graph) are not layers; their own time (inductor's generated C++ kernels run
inside the compiled graph's call, unprofiled) is kept as a row of its own, so the rows add
up to the run. A program has no layer names, so a layer is named by its operator and
occurrence (`aten::conv2d#3`): the same program profiled twice lines up row by row.

The exec type is the kernel that did the work (the descendant that took most of the time,
`aten::mkldnn_convolution`); the precision, the narrowest dtype among the op's inputs. On a
CUDA session, the time is the device time of the kernels the op launched."""

from __future__ import annotations

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from agents.probes.profile import LayerTime, precision_of, shape_signature, warm_up

RUN_MARK = "harness_profile_run_"
# a wrapper's own time below this (microseconds) is bookkeeping, not a row worth showing
WRAPPER_MIN_US = 1.0


def _is_op(event) -> bool:
    return "::" in event.name


def _kernel(event) -> str:
    """The descendant that did most of the op's work."""
    current = event
    while current.cpu_children:
        child = max(current.cpu_children, key=lambda c: c.cpu_time_total)
        if child.cpu_time_total < 0.5 * current.cpu_time_total:
            break
        current = child
    return current.name


class _Walk:
    def __init__(self, cuda: bool):
        self.cuda = cuda
        self.rows: list[LayerTime] = []
        self.seen: dict[str, int] = {}

    def _name(self, base: str) -> str:
        self.seen[base] = self.seen.get(base, 0) + 1
        return f"{base}#{self.seen[base]}"

    def _us(self, event, own: bool = False) -> float:
        if self.cuda:
            return event.self_device_time_total if own else event.device_time_total
        return event.self_cpu_time_total if own else event.cpu_time_total

    def visit(self, event) -> None:
        if _is_op(event):
            dtypes = [d for d in (event.input_dtypes or []) if d]
            shapes = [s for s in (event.input_shapes or []) if isinstance(s, (list, tuple))
                      and all(isinstance(d, int) for d in s)]
            self.rows.append(LayerTime(layer=self._name(event.name), op_type=event.name,
                                       exec_type=_kernel(event), precision=precision_of(dtypes),
                                       ms=self._us(event) / 1000.0,
                                       shapes=shape_signature(shapes)))
            return
        own = self._us(event, own=True)
        if own >= WRAPPER_MIN_US:
            self.rows.append(LayerTime(layer=self._name(event.name), op_type="(framework)",
                                       exec_type=None, precision=None, ms=own / 1000.0))
        for child in event.cpu_children:
            self.visit(child)


class TorchProfiler:
    def __init__(self, session, cuda: bool = False):
        self._session, self._cuda = session, cuda
        self.source = f"torch {torch.__version__} torch.profiler" + (" (CUDA)" if cuda else "")

    def profile(self, inputs: dict, runs: int, warmup_s: float) -> list[list[LayerTime]]:
        call = self._session.timed_call(inputs)  # a new shape compiles here, unprofiled
        warm_up(call, warmup_s)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self._cuda else [])
        with profile(activities=activities, record_shapes=True) as prof:
            for k in range(runs):
                with record_function(f"{RUN_MARK}{k}"):
                    call()
        marks = sorted((e for e in prof.events() if e.name.startswith(RUN_MARK)),
                       key=lambda e: int(e.name.removeprefix(RUN_MARK)))
        out = []
        for mark in marks:
            walk = _Walk(self._cuda)
            for child in mark.cpu_children:
                walk.visit(child)
            out.append(walk.rows)
        return out

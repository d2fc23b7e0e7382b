"""Per-layer profiles: which layers take the time, what each ran as, in what precision.

A separate pass after the timed loop (profiling slows every call; no latency sample is ever
taken under a profiler), using each runtime's own profiler: a runtime session's `profiler()`
returns an object whose `profile(inputs, runs)` gives, per run, the layers it executed
(LayerTime, in execution order). A runtime without a profiler raises ProfileUnavailable
with the reason, which is stored instead of figures.

    profile = profile_row(profiler, inputs, runs=10)
    profile["layers"]  -> [{"order", "layer", "op_type", "exec_type", "precision",
                            "time_ms", "share"}, ...]   # medians over the runs
"""

from __future__ import annotations

from dataclasses import dataclass

import time

import numpy as np

# Runs before the profiled ones, dropped: first-call allocations, caches, lazy weight
# packing. At least this many, and for the cell's warm-up time: OpenVINO's counter of a
# FullyConnected layer still reads 40x its settled time after 3 runs of a fresh request.
WARMUP_RUNS = 2
MAX_WARMUP_RUNS = 200  # a bound for very fast models (a traced warm-up passes a lower one)


class ProfileUnavailable(Exception):
    """This runtime (or this build of it) cannot time layers; the message says why."""


@dataclass(frozen=True)
class LayerTime:
    layer: str              # the runtime's name for the layer / node / op
    op_type: str            # Conv, ConvInteger, Convolution, aten::conv2d, ...
    exec_type: str | None   # the kernel or implementation it ran as, where the runtime says
    precision: str | None   # int8 fp16 bf16 fp32, where the runtime says (None: unknown)
    ms: float
    # the shapes of its inputs of two or more dims, then its outputs', where the runtime
    # says ("1x64x56x56;128x64x3x3->1x128x28x28"): what lines up a layer across two
    # variants whose runtimes name and order their layers differently
    shapes: str | None = None


def shape_signature(inputs, outputs=()) -> str | None:
    """The inputs' shapes of two or more dims, in order, then the outputs' after '->':
    '1x64x56x56;128x64x3x3->1x128x28x28'."""
    def joined(shapes):
        return ";".join("x".join(str(int(d)) for d in shape) for shape in shapes
                        if shape is not None and len(shape) >= 2)
    ins, outs = joined(inputs), joined(outputs)
    if not ins:
        return None
    return ins + (f"->{outs}" if outs else "")


# dtype names as the runtimes spell them -> the precision a layer computes in
_PRECISIONS = {
    "uint8": "int8", "int8": "int8", "u8": "int8", "i8": "int8", "unsigned char": "int8",
    "signed char": "int8", "c10::quint8": "int8", "c10::qint8": "int8",
    "float16": "fp16", "f16": "fp16", "fp16": "fp16", "c10::half": "fp16", "half": "fp16",
    "bfloat16": "bf16", "bf16": "bf16", "c10::bfloat16": "bf16",
    "float": "fp32", "float32": "fp32", "f32": "fp32", "fp32": "fp32",
    "int32": "int32", "i32": "int32",  # an int8 layer's accumulators
}
_NARROWEST_FIRST = ("int8", "fp16", "bf16", "fp32", "int32")


def precision_of(dtypes) -> str | None:
    """A layer's compute precision from its inputs' dtypes: the narrowest numeric type among
    them (an int8 conv takes uint8 activations and int8 weights; its int32 bias and int64
    shape inputs say nothing). None when no input has a float or 8-bit type."""
    found = {_PRECISIONS.get(str(d).strip().lower()) for d in dtypes}
    return next((p for p in _NARROWEST_FIRST if p in found), None)


def _keyed(run: list[LayerTime]) -> list[tuple[tuple[str, int], LayerTime]]:
    """Each layer keyed by its name and its occurrence (a runtime may list a name twice)."""
    seen: dict[str, int] = {}
    keyed = []
    for layer in run:
        seen[layer.layer] = seen.get(layer.layer, 0) + 1
        keyed.append(((layer.layer, seen[layer.layer]), layer))
    return keyed


def summarize_runs(runs: list[list[LayerTime]], source: str) -> dict:
    """Median time per layer over the runs, in the first run's order; each layer's share
    of the sum of medians; the median of the runs' totals."""
    if not runs or not any(runs):
        raise ProfileUnavailable(f"{source} reported no executed layers")
    times: dict[tuple[str, int], list[float]] = {}
    first: dict[tuple[str, int], LayerTime] = {}
    for run in runs:
        for key, layer in _keyed(run):
            times.setdefault(key, []).append(layer.ms)
            first.setdefault(key, layer)
    medians = {key: float(np.median(values)) for key, values in times.items()}
    total = sum(medians.values())
    layers = []
    for order, (key, layer) in enumerate(first.items()):
        layers.append({"order": order, "layer": layer.layer, "op_type": layer.op_type,
                       "exec_type": layer.exec_type, "precision": layer.precision,
                       "shapes": layer.shapes, "time_ms": medians[key],
                       "share": medians[key] / total if total > 0 else None})
    run_totals = [sum(layer.ms for layer in run) for run in runs]
    return {"source": source, "runs": len(runs), "layers": layers,
            "total_ms": float(np.median(run_totals)), "reason": None}


def open_profiler(session):
    """The session's profiler, or the reason it has none (a string)."""
    try:
        return session.profiler()
    except ProfileUnavailable as exc:
        return str(exc)


def warm_up(call, seconds: float, max_runs: int = MAX_WARMUP_RUNS) -> int:
    """Call until `seconds` have passed (at least WARMUP_RUNS, at most `max_runs` times);
    how many calls."""
    calls, deadline = 0, time.perf_counter() + seconds
    while calls < WARMUP_RUNS or (time.perf_counter() < deadline and calls < max_runs):
        call()
        calls += 1
    return calls


def profile_row(profiler, inputs: dict, runs: int, warmup_s: float = 0.0) -> dict:
    """One (shape, batch) row's profile, or {"reason": ...} when there is none. A profiler
    that fails on these inputs costs the profile, never the cell's measured figures."""
    if isinstance(profiler, str):
        return {"reason": profiler, "layers": []}
    try:
        return summarize_runs(profiler.profile(inputs, runs=runs, warmup_s=warmup_s),
                              profiler.source)
    except ProfileUnavailable as exc:
        return {"reason": str(exc), "layers": []}
    except Exception as exc:  # noqa: BLE001 - stored as the reason, the cell stays ok
        return {"reason": f"{profiler.source} failed: {type(exc).__name__}: {exc}",
                "layers": []}

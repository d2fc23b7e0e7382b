"""ONNX Runtime's own profiler (SessionOptions.enable_profiling): a second session of the
same model with the same options, whose JSON trace lists every node's kernel time per run.

Nodes are those of the optimized graph ORT executes (fused Conv+Relu, NCHWc reorders,
ConvInteger with its scale multiplications), so a layer here is what really ran. A node's
precision is the narrowest type among its inputs (`input_type_shape` in the trace)."""

from __future__ import annotations

import bisect
import json
import os
import shutil
import tempfile

import onnxruntime as ort

from agents.probes.profile import LayerTime, precision_of, shape_signature, warm_up

KERNEL_SUFFIX = "_kernel_time"
# ORT traces the warm-up runs too, and the trace is JSON read back whole: a model of 0.07 ms
# (Silero VAD) traced 200 warm-up runs a row, 0.3 s of parsing. ORT's first-call work
# (allocations, weight prepacking) is done within a few runs; 50 leave a wide margin.
TRACED_WARMUP_RUNS = 50


def _input_dtypes(args: dict) -> list[str]:
    return [dtype for entry in args.get("input_type_shape") or [] for dtype in entry]


def _shapes(args: dict, which: str) -> list:
    return [shape for entry in args.get(which) or [] for shape in entry.values()]


def runs_from_trace(events: list[dict], skip: int = 0) -> list[list[LayerTime]]:
    """Per model_run window of the trace, its nodes' kernel times in execution order; the
    first `skip` windows (warm-up runs, traced too) are dropped before their nodes are
    read. Each node finds its window by bisection: a warm-up of 0.1 s traces hundreds of
    runs of a small model, and a scan of every window for every node cost ~0.15 s a row."""
    windows = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                     if e.get("cat") == "Session" and e.get("name") == "model_run")[skip:]
    runs: list[list[LayerTime]] = [[] for _ in windows]
    if not windows:
        return runs
    starts = [start for start, _ in windows]
    nodes = sorted((e for e in events if e.get("cat") == "Node" and e["ts"] >= starts[0]
                    and str(e.get("name", "")).endswith(KERNEL_SUFFIX)), key=lambda e: e["ts"])
    for event in nodes:
        k = bisect.bisect_right(starts, event["ts"]) - 1
        if k < 0 or event["ts"] > windows[k][1]:
            continue  # outside every kept run (ORT traces nothing between runs)
        args = event.get("args") or {}
        provider = str(args.get("provider", "")).removesuffix("ExecutionProvider")
        runs[k].append(LayerTime(
            layer=event["name"].removesuffix(KERNEL_SUFFIX),
            op_type=str(args.get("op_name", "?")), exec_type=provider or None,
            precision=precision_of(_input_dtypes(args)), ms=event["dur"] / 1000.0,
            shapes=shape_signature(_shapes(args, "input_type_shape"),
                                   _shapes(args, "output_type_shape"))))
    return runs


class OrtProfiler:
    source = f"onnxruntime {ort.__version__} enable_profiling"

    def __init__(self, path: str, options: ort.SessionOptions,
                 providers: list | None = None):
        # the timed session's providers (a GPU session's too): each layer's trace event
        # names the provider that ran it
        self._path, self._options = path, options
        self._providers = providers or ["CPUExecutionProvider"]

    def profile(self, inputs: dict, runs: int, warmup_s: float) -> list[list[LayerTime]]:
        folder = tempfile.mkdtemp(prefix="ort-profile-")
        try:
            self._options.enable_profiling = True
            self._options.profile_file_prefix = os.path.join(folder, "trace")
            session = ort.InferenceSession(self._path, sess_options=self._options,
                                           providers=self._providers)
            # warm-up runs are traced too, and dropped below
            warmup = warm_up(lambda: session.run(None, inputs), warmup_s,
                             max_runs=TRACED_WARMUP_RUNS)
            for _ in range(runs):
                session.run(None, inputs)
            with open(session.end_profiling()) as f:
                events = json.load(f)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return runs_from_trace(events, skip=warmup)

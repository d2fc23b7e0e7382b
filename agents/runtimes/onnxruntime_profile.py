"""ONNX Runtime's own profiler (SessionOptions.enable_profiling): a second session of the
same model with the same options, whose JSON trace lists every node's kernel time per run.

Nodes are those of the optimized graph ORT executes (fused Conv+Relu, NCHWc reorders,
ConvInteger with its scale multiplications), so a layer here is what really ran. A node's
precision is the narrowest type among its inputs (`input_type_shape` in the trace)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import onnxruntime as ort

from agents.probes.profile import LayerTime, precision_of, shape_signature, warm_up

KERNEL_SUFFIX = "_kernel_time"


def _input_dtypes(args: dict) -> list[str]:
    return [dtype for entry in args.get("input_type_shape") or [] for dtype in entry]


def _shapes(args: dict, which: str) -> list:
    return [shape for entry in args.get(which) or [] for shape in entry.values()]


def runs_from_trace(events: list[dict]) -> list[list[LayerTime]]:
    """Per model_run window of the trace, its nodes' kernel times in execution order."""
    windows = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                     if e.get("cat") == "Session" and e.get("name") == "model_run")
    runs: list[list[LayerTime]] = [[] for _ in windows]
    nodes = sorted((e for e in events if e.get("cat") == "Node"
                    and str(e.get("name", "")).endswith(KERNEL_SUFFIX)), key=lambda e: e["ts"])
    for event in nodes:
        for k, (start, end) in enumerate(windows):
            if start <= event["ts"] <= end:
                args = event.get("args") or {}
                provider = str(args.get("provider", "")).removesuffix("ExecutionProvider")
                runs[k].append(LayerTime(
                    layer=event["name"].removesuffix(KERNEL_SUFFIX),
                    op_type=str(args.get("op_name", "?")), exec_type=provider or None,
                    precision=precision_of(_input_dtypes(args)), ms=event["dur"] / 1000.0,
                    shapes=shape_signature(_shapes(args, "input_type_shape"),
                                           _shapes(args, "output_type_shape"))))
                break
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
            warmup = warm_up(lambda: session.run(None, inputs), warmup_s)
            for _ in range(runs):
                session.run(None, inputs)
            with open(session.end_profiling()) as f:
                events = json.load(f)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return runs_from_trace(events)[warmup:]

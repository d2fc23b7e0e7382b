"""TensorRT's own per-layer timing: an IProfiler on the execution context, called once per
layer after each synchronous enqueue (what `trtexec --dumpProfile --separateProfileRun`
reports). Layer types, tactics and precisions come from the engine inspector's JSON under
the same layer names (the engine is built with detailed profiling verbosity)."""

from __future__ import annotations

import tensorrt as trt

from agents.probes.profile import LayerTime, warm_up
from agents.runtimes.tensorrt_layers import layer_details


class _Collector(trt.IProfiler):
    def __init__(self):
        trt.IProfiler.__init__(self)
        self.times: list[tuple[str, float]] = []

    def report_layer_time(self, layer_name, ms):
        self.times.append((layer_name, float(ms)))


class TensorRtProfiler:
    source = f"tensorrt {trt.__version__} IProfiler"

    def __init__(self, session, context, engine_json: str):
        self._session, self._context = session, context
        self._details = layer_details(engine_json)

    def profile(self, inputs: dict, runs: int, warmup_s: float) -> list[list[LayerTime]]:
        warm_up(lambda: self._session.run(inputs), warmup_s)  # before the profiler is set
        collector = _Collector()
        self._context.profiler = collector
        out = []
        try:
            for _ in range(runs):
                collector.times = []
                self._session.run(inputs)  # enqueue, then synchronise: the profiler reports
                out.append([self._row(name, ms) for name, ms in collector.times])
        finally:
            self._context.profiler = None
        return out

    def _row(self, name: str, ms: float) -> LayerTime:
        detail = self._details.get(name, {})
        return LayerTime(layer=name, op_type=detail.get("op_type", "?"),
                         exec_type=detail.get("tactic"), precision=detail.get("precision"),
                         ms=ms)

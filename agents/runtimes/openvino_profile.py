"""OpenVINO's own per-layer counters (PERF_COUNT, InferRequest.profiling_info, what
`benchmark_app -pc` prints): the same IR compiled a second time with the cell's settings
and PERF_COUNT on, so the timed model never carries the counters' overhead.

Each executed layer of the compiled execution graph: its name, type (Convolution,
FullyConnected, Reorder...), the primitive it ran as (`brgconv_avx512_I8`, `jit_avx2_f32`)
and its real time; layers fused away or not run (status NOT_RUN, OPTIMIZED_OUT) are left
out, as benchmark_app's totals leave them out. The precision is the primitive's suffix."""

from __future__ import annotations

import openvino as ov

from agents.arrays import contiguous
from agents.probes.profile import LayerTime, precision_of, warm_up


def exec_precision(exec_type: str) -> str | None:
    """`brgconv_avx512_I8` -> int8, `jit_uni_f32` -> fp32, `ref_any_bf16` -> bf16."""
    return precision_of([exec_type.rsplit("_", 1)[-1]]) if "_" in exec_type else None


def executed_layers(profiling_info) -> list[LayerTime]:
    return [LayerTime(layer=info.node_name, op_type=info.node_type,
                      exec_type=info.exec_type, precision=exec_precision(info.exec_type),
                      ms=info.real_time.total_seconds() * 1000.0)
            for info in profiling_info if info.status == ov.ProfilingInfo.Status.EXECUTED]


class OpenVinoProfiler:
    source = f"openvino {ov.get_version()} PERF_COUNT profiling_info"

    def __init__(self, path: str, config: dict):
        self._path, self._config = path, config
        self._compiled = None

    def profile(self, inputs: dict, runs: int, warmup_s: float) -> list[list[LayerTime]]:
        if self._compiled is None:  # compiled once per cell, on the first profiled row
            core = ov.Core()
            self._compiled = core.compile_model(core.read_model(self._path), "CPU",
                                                self._config | {"PERF_COUNT": True})
        request = self._compiled.create_infer_request()
        for name, array in inputs.items():
            request.set_tensor(name, ov.Tensor(contiguous(array)))
        warm_up(request.infer, warmup_s)
        out = []
        for _ in range(runs):
            request.infer()
            out.append(executed_layers(request.profiling_info))
        return out

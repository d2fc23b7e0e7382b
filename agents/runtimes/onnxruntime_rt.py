"""ONNX Runtime on the CPU execution provider (on nvidia-gpu: onnxruntime_gpu_rt).

An fp16 model runs, but the CPU provider computes each node it has no fp16 kernel for in
fp32 (InsertCastTransformer; on x86 that is every conv and gemm, whose fp16 weights are
then folded to fp32 at load). For fp16 / bf16 the session therefore writes its optimized
graph once at load and reports the precision its compute nodes' weights actually have."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import onnxruntime as ort

from agents.runtimes.base import Session, check_inputs
from agents.runtimes.onnxruntime_options import session_options

FLOAT_PRECISIONS = ("fp16", "bf16")
# Nodes whose weights (input 1) set the compute precision, in any domain (ORT fuses Conv
# into com.microsoft.nchwc Conv / FusedConv and Gemm into FusedGemm).
COMPUTE_OPS = {"Conv", "FusedConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul",
               "ConvTranspose"}


def _compute_precision(optimized_path: str) -> tuple[str, dict]:
    import onnx
    from collections import Counter

    model = onnx.load(optimized_path)
    dtypes = {t.name: t.data_type for t in model.graph.initializer}
    counts: Counter = Counter()
    for node in model.graph.node:
        if node.op_type in COMPUTE_OPS and len(node.input) > 1 and node.input[1] in dtypes:
            counts[onnx.helper.tensor_dtype_to_np_dtype(dtypes[node.input[1]]).name] += 1
    precision = ("fp16" if counts.get("float16", 0) * 2 > sum(counts.values())
                 else "fp32")
    return precision, {"compute_weight_dtypes": dict(sorted(counts.items()))}


class OrtSession(Session):
    def __init__(self, path: str, threads: int, precision: str):
        self._path, self._threads = path, threads
        opts = session_options(threads)
        inspect = precision in FLOAT_PRECISIONS
        if inspect:
            fd, optimized = tempfile.mkstemp(suffix=".optimized.onnx")
            os.close(fd)
            opts.optimized_model_filepath = optimized
            opts.log_severity_level = 3  # "hardware specific optimizations" warning
        try:
            self._session = ort.InferenceSession(path, sess_options=opts,
                                                 providers=["CPUExecutionProvider"])
            computed, details = _compute_precision(optimized) if inspect else (precision, {})
        finally:
            if inspect:
                os.unlink(optimized)
        self._names = [i.name for i in self._session.get_inputs()]
        self.precision = computed
        self.info = {"runtime": "onnxruntime", "version": ort.__version__,
                     "providers": self._session.get_providers(), "threads": threads,
                     "inputs": {i.name: [i.type, list(i.shape)]
                                for i in self._session.get_inputs()}}
        if inspect:
            self.info |= {"requested_precision": precision, "compute_precision": computed,
                          **details}

    def profiler(self):
        from agents.runtimes.onnxruntime_profile import OrtProfiler
        return OrtProfiler(self._path, session_options(self._threads))

    def concurrent(self, inputs, concurrency, threads):
        from agents.runtimes.onnxruntime_concurrent import concurrent_runs
        return concurrent_runs(self._path, inputs, concurrency, threads,
                               ["CPUExecutionProvider"], self._names)

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        check_inputs(inputs, self._names, "onnxruntime")
        return self._session.run(None, inputs)

    def timed_call(self, inputs: dict[str, np.ndarray]):
        check_inputs(inputs, self._names, "onnxruntime")
        run = self._session.run
        return lambda: run(None, inputs)


def open_session(path: str, *, threads: int, device: str, precision: str):
    if device == "nvidia-gpu":  # same artifact, the GPU agent's session (onnxruntime-gpu)
        from agents.runtimes.onnxruntime_gpu_rt import open_session as open_gpu
        return open_gpu(path, threads=threads, device=device, precision=precision)
    if device not in ("intel-cpu", "arm-edge"):
        raise ValueError(f"the onnxruntime CPU runtime does not run on {device}")
    return OrtSession(path, threads, precision)

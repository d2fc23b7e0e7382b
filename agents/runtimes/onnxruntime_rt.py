"""ONNX Runtime on the CPU execution provider."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort


class OrtSession:
    def __init__(self, path: str, threads: int, precision: str):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads > 1:
            # Spinning threads steal the core from the other pool member on a busy host
            # (seen on 2-core machines: 2 threads slower than 1).
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(path, sess_options=opts,
                                             providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self.precision = precision
        self.info = {"runtime": "onnxruntime", "version": ort.__version__,
                     "providers": self._session.get_providers(), "threads": threads}

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: batch})[0]


def open_session(path: str, *, threads: int, device: str, precision: str) -> OrtSession:
    if device not in ("intel-cpu", "arm-edge"):
        raise ValueError(f"the onnxruntime CPU runtime does not run on {device}")
    return OrtSession(path, threads, precision)

"""The ONNX Runtime session options every session of a cell uses, CPU or GPU, timed or
profiled: one definition, so a profile runs what was timed."""

from __future__ import annotations

import onnxruntime as ort


def session_options(threads: int) -> ort.SessionOptions:
    """The options every session of a cell uses (the timed one and the profiled one)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads > 1:
        # Spinning threads steal the core from the other pool member on a busy host
        # (seen on 2-core machines: 2 threads slower than 1).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts

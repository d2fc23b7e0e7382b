"""ONNX Runtime's concurrency for the throughput scenarios, CPU or GPU session alike."""

from __future__ import annotations

import onnxruntime as ort

from agents.runtimes.base import check_inputs
from agents.runtimes.onnxruntime_options import session_options


def concurrent_runs(path: str, inputs: dict, concurrency: int | None, threads: int | None,
                    providers: list, names: list[str]):
    """Concurrent run() calls on one session (ONNX Runtime's sessions are thread-safe and
    release the GIL): its intra-op pool split between the requests in flight. ONNX Runtime
    has no throughput hint: one single-threaded request per core unless told."""
    from agents.probes.scenarios import Concurrency
    from agents.runtimes.base import split_budget

    check_inputs(inputs, names, "onnxruntime")
    n, per_call, source = split_budget(concurrency, threads)
    opts = session_options(per_call)
    session = ort.InferenceSession(path, sess_options=opts, providers=providers)
    run = session.run
    return Concurrency([lambda: run(None, inputs)] * n, per_call, source,
                       {"providers": session.get_providers(), "intra_op_threads": per_call})

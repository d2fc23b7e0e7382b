"""Runtimes: load(artifact) -> session.run(batch). One module per runtime, imported lazily so
a host without a runtime's package can still run the others."""

from __future__ import annotations

import importlib
from typing import Protocol

import numpy as np

RUNTIMES = {
    "onnxruntime": "agents.runtimes.onnxruntime_rt",
    "openvino": "agents.runtimes.openvino_rt",
    "torch": "agents.runtimes.torch_rt",
    "litert": "agents.runtimes.litert_rt",
    "tensorrt": "agents.runtimes.tensorrt_rt",
}


class Session(Protocol):
    precision: str          # what the runtime actually computes in: fp32, fp16, bf16, int8
    info: dict              # runtime name, version, providers, threads

    def run(self, batch: np.ndarray) -> np.ndarray: ...


def runtime_module(runtime: str):
    """Import a runtime (and its heavy library) without loading a model: the worker does this
    before it starts the load-time clock, so load time is the model's, not `import torch`."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r} (allowed: {', '.join(RUNTIMES)})")
    return importlib.import_module(RUNTIMES[runtime])


def open_session(runtime: str, artifact: str, *, threads: int, device: str,
                 precision: str) -> Session:
    return runtime_module(runtime).open_session(artifact, threads=threads, device=device,
                                                precision=precision)

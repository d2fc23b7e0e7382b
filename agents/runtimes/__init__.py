"""Runtimes: open_session(artifact) -> a Session (agents.runtimes.base) that runs named
inputs. One module per runtime, imported lazily so a host without a runtime's package can
still run the others. The registry names each runtime's module and the Python package it
needs (what `harness doctor` and the agents' labels report)."""

from __future__ import annotations

import importlib

from agents.runtimes.base import Session

# runtime name -> (module, the Python package it needs)
RUNTIMES = {
    "onnxruntime": ("agents.runtimes.onnxruntime_rt", "onnxruntime"),
    "openvino": ("agents.runtimes.openvino_rt", "openvino"),
    "torch": ("agents.runtimes.torch_rt", "torch"),
    "litert": ("agents.runtimes.litert_rt", "ai_edge_litert"),
    "tensorrt": ("agents.runtimes.tensorrt_rt", "tensorrt"),
}


def runtime_module(runtime: str):
    """Import a runtime (and its heavy library) without loading a model: the worker does this
    before it starts the load-time clock, so load time is the model's, not `import torch`."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r} (allowed: {', '.join(RUNTIMES)})")
    return importlib.import_module(RUNTIMES[runtime][0])


def open_session(runtime: str, artifact: str, *, threads: int, device: str,
                 precision: str) -> Session:
    return runtime_module(runtime).open_session(artifact, threads=threads, device=device,
                                                precision=precision)

"""What a model-level method gets besides the model and its config, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch


class MethodError(RuntimeError):
    """A method could not produce a usable model (e.g. training diverged): fails that cell."""


@dataclass
class BuildContext:
    dataset: object                  # harness.data.Dataset
    cache_dir: Path
    input_shape: tuple[int, ...]
    model_name: str = ""
    threads: int = 2
    base_dir: Path | None = None     # the matrix's folder: module: sources resolve from there
    # Makes the service that measures candidate latencies for hardware-in-the-loop search
    # (harness.methods.nas_latency.LatencyService's signature); None: this host's worker.
    latency_service: object | None = None


@dataclass
class MethodOutput:
    module: torch.nn.Module
    report: dict = field(default_factory=dict)   # stored as variants.method_report

"""Candidate latencies for the architecture search, measured by the agent worker.

Hardware in the loop: a candidate is exported to the search's format and timed by the same
worker process (agents.worker) that measures sweep cells, on this host. Inside a sweep on
a cluster, the build task hands the search a service that sends candidates to an agent of
the target device instead (harness/cluster/nas_latency.py): this module knows nothing of
Ray. Measured latencies are cached per (architecture, format, toolchain, device host) so a
repeated search re-measures nothing."""

from __future__ import annotations

import hashlib
import json
import socket
import tempfile
from pathlib import Path

import numpy as np

from harness.methods.context import MethodError

# Short but rule-driven: the worker's stopping rule still applies (CI of the median).
CANDIDATE_MEASURE = {"batch_sizes": [1], "threads": 1, "warmup_s": 0.2, "min_iterations": 30,
                     "min_seconds": 0.5, "max_seconds": 3.0, "ci_rel_width": 0.03,
                     "accuracy": False, "timeout_s": 120.0, "memory_limit_mb": None}


def candidate_payload(artifact: Path, pack: Path, runtime: str, device: str):
    from agents.artifacts import artifact_digest, sha256_file
    from agents.cell import CellPayload, FileRef

    return CellPayload(cell_id=f"nas/{artifact.stem}/{device}", device=device,
                       runtime=runtime, precision="fp32",
                       artifact=FileRef(str(artifact), artifact_digest(artifact, [])),
                       eval_pack=FileRef(str(pack), sha256_file(pack)),
                       measure=CANDIDATE_MEASURE)


def _summary(result) -> dict:
    if not result.ok:
        raise MethodError(f"measuring a NAS candidate failed: {result.error}")
    row = result.measurements[0]
    return {"p50_ms": row["latency_p50_ms"], "cv": row["latency_cv"],
            "iterations": row["iterations"], "stop_reason": row["stop_reason"],
            "host": result.device["host"], "cpu_model": result.device.get("cpu_model")}


def write_inputs_pack(folder: Path, inputs: np.ndarray) -> Path:
    """The candidates' timing inputs as an eval pack without reference outputs."""
    from agents.evalpack import write_pack
    from agents.cell import specs_for

    path = folder / f"inputs-{hashlib.sha256(inputs.tobytes()).hexdigest()[:16]}.npz"
    if not path.is_file():
        specs = specs_for(tuple(inputs.shape[1:]))
        write_pack(path, task="generic", inputs=list(specs), shapes=[{}],
                   test_inputs=[{specs[0].name: inputs}], references=None, labels=None,
                   samples=len(inputs))
    return path


class LatencyService:
    """Measures exported candidates on `device` here, in a fresh worker process. The
    latency_service seam (BuildContext) is a factory with this constructor's signature."""

    def __init__(self, fmt: str, device: str, cache_dir: Path, inputs: np.ndarray):
        from harness.formats import FORMATS

        self.plugin = FORMATS[fmt]
        self.device = device
        self.folder = Path(cache_dir) / "nas" / "latency"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.pack = write_inputs_pack(self.folder, inputs)
        self.measured = self.cached = 0

    def where(self) -> str:
        """The host whose agent measures (part of the cache key)."""
        return socket.gethostname()

    def _key(self, arch: dict) -> str:
        blob = json.dumps({"arch": arch, "format": self.plugin.name, "device": self.device,
                           "host": self.where(), "toolchain": self.plugin.toolchain(),
                           "measure": CANDIDATE_MEASURE}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def latency(self, arch: dict, module, example) -> dict:
        cache = self.folder / f"{self._key(arch)}.json"
        if cache.is_file():
            self.cached += 1
            return json.loads(cache.read_text()) | {"cached": True}
        with tempfile.TemporaryDirectory(prefix="harness-nas-") as tmp:
            from agents.cell import specs_for
            from harness.formats.export_spec import ExportSpec

            artifact = Path(tmp) / f"candidate{self.plugin.extension}"
            spec = ExportSpec(inputs=specs_for(tuple(example.shape[1:])),
                              profile={"batch": (1, 1, 1)})
            self.plugin.export(module.eval(), (example,), artifact, spec)
            if self.plugin.companions:
                raise MethodError(f"NAS latency in format '{self.plugin.name}' is not "
                                  f"supported (multi-file artifacts); use onnx or tflite")
            result = self.measure(artifact)
        summary = _summary(result)
        tmp_cache = cache.with_suffix(".tmp")
        tmp_cache.write_text(json.dumps(summary))
        tmp_cache.replace(cache)
        self.measured += 1
        return summary | {"cached": False}

    def measure(self, artifact: Path):
        """Time one exported candidate: a CellResult."""
        from agents.launcher import run_cell
        return run_cell(candidate_payload(artifact, self.pack, self.plugin.runtime,
                                          self.device), CANDIDATE_MEASURE["timeout_s"])

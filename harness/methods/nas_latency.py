"""Candidate latencies for the architecture search, measured on the target device's agent.

Hardware in the loop: a candidate is exported to the search's format and timed by the same
worker process (agents.worker) that measures sweep cells. Inside a sweep the search runs in
a build task on the cluster: when this node is an agent of the target device it measures
here (the build holds this host's slot, so nothing else runs beside it); otherwise the
artifact's bytes travel to an agent of that device as a Ray task. Measured latencies are
cached per (architecture, format, toolchain, device host) so a repeated search re-measures
nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import tempfile
from pathlib import Path

import numpy as np
import torch

from harness.methods.context import MethodError

# Short but rule-driven: the worker's stopping rule still applies (CI of the median).
CANDIDATE_MEASURE = {"batch_sizes": [1], "threads": 1, "warmup_s": 0.2, "min_iterations": 30,
                     "min_seconds": 0.5, "max_seconds": 3.0, "ci_rel_width": 0.03,
                     "accuracy": False, "timeout_s": 120.0, "memory_limit_mb": None}
REMOTE_TIMEOUT_S = 300.0


def _digest(path: Path) -> str:
    from agents.artifacts import artifact_digest
    return artifact_digest(path, [])


def _payload(artifact: Path, pack: Path, runtime: str, device: str) -> dict:
    from agents.artifacts import sha256_file
    return {"cell_id": f"nas/{artifact.stem}/{device}", "device": device, "runtime": runtime,
            "precision": "fp32",
            "artifact": {"path": str(artifact), "sha256": _digest(artifact), "companions": []},
            "eval_pack": {"path": str(pack), "sha256": sha256_file(pack)},
            "measure": CANDIDATE_MEASURE}


def _summary(result: dict) -> dict:
    if result.get("status") != "ok":
        raise MethodError(f"measuring a NAS candidate failed: {result.get('error')}")
    row = result["measurements"][0]
    return {"p50_ms": row["latency_p50_ms"], "cv": row["latency_cv"],
            "iterations": row["iterations"], "stop_reason": row["stop_reason"],
            "host": result["device"]["host"], "cpu_model": result["device"].get("cpu_model")}


def measure_bytes_task(files: dict, runtime: str, device: str) -> dict:
    """On a remote agent: write the candidate and its inputs to a temp folder, verify and
    time them in a fresh worker process (agents.launcher)."""
    from agents.launcher import run_cell

    with tempfile.TemporaryDirectory(prefix="harness-nas-") as tmp:
        paths = {}
        for name, blob in files.items():
            paths[name] = Path(tmp) / name
            paths[name].write_bytes(base64.b64decode(blob))
        payload = _payload(paths["artifact"], paths["pack.npz"], runtime, device)
        return run_cell(payload, CANDIDATE_MEASURE["timeout_s"])


class LatencyService:
    """Measures exported candidates on `device`: here, or on a cluster agent of that kind."""

    def __init__(self, fmt: str, device: str, cache_dir: Path, inputs: np.ndarray):
        from harness.formats import FORMATS

        self.plugin = FORMATS[fmt]
        self.device = device
        self.folder = Path(cache_dir) / "nas" / "latency"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.pack = self.folder / f"inputs-{hashlib.sha256(inputs.tobytes()).hexdigest()[:16]}.npz"
        if not self.pack.is_file():
            tmp = self.pack.with_suffix(".tmp.npz")
            np.savez(tmp, test_x=inputs)
            tmp.replace(self.pack)
        self.target = _pick_target(device)   # None: this host
        self.measured = self.cached = 0

    def where(self) -> str:
        return socket.gethostname() if self.target is None else self.target["host"]

    def _key(self, arch: dict) -> str:
        blob = json.dumps({"arch": arch, "format": self.plugin.name, "device": self.device,
                           "host": self.where(), "toolchain": self.plugin.toolchain(),
                           "measure": CANDIDATE_MEASURE}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def latency(self, arch: dict, module: torch.nn.Module, example: torch.Tensor) -> dict:
        cache = self.folder / f"{self._key(arch)}.json"
        if cache.is_file():
            self.cached += 1
            return json.loads(cache.read_text()) | {"cached": True}
        with tempfile.TemporaryDirectory(prefix="harness-nas-") as tmp:
            artifact = Path(tmp) / f"candidate{self.plugin.extension}"
            self.plugin.export(module.eval(), example, artifact)
            if self.plugin.companions:
                raise MethodError(f"NAS latency in format '{self.plugin.name}' is not "
                                  f"supported (multi-file artifacts); use onnx or tflite")
            result = self._run(artifact)
        summary = _summary(result)
        tmp_cache = cache.with_suffix(".tmp")
        tmp_cache.write_text(json.dumps(summary))
        tmp_cache.replace(cache)
        self.measured += 1
        return summary | {"cached": False}

    def _run(self, artifact: Path) -> dict:
        if self.target is None:
            from agents.launcher import run_cell
            return run_cell(_payload(artifact, self.pack, self.plugin.runtime, self.device),
                            CANDIDATE_MEASURE["timeout_s"])
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from harness.cluster.connection import HOST_SLOT, device_resource

        files = {"artifact": base64.b64encode(artifact.read_bytes()).decode(),
                 "pack.npz": base64.b64encode(self.pack.read_bytes()).decode()}
        task = ray.remote(max_retries=1)(measure_bytes_task).options(
            num_cpus=1, resources={device_resource(self.device): 1, HOST_SLOT: 1},
            scheduling_strategy=NodeAffinitySchedulingStrategy(self.target["node_id"],
                                                               soft=True))
        ref = task.remote(files, self.plugin.runtime, self.device)
        ready, _ = ray.wait([ref], timeout=REMOTE_TIMEOUT_S)
        if not ready:
            ray.cancel(ref, force=True)
            raise MethodError(f"no {self.device} agent measured a NAS candidate within "
                              f"{REMOTE_TIMEOUT_S:.0f} s")
        return ray.get(ref)


def _pick_target(device: str) -> dict | None:
    """None when this process may measure here: no cluster, or this node is an agent of
    `device`. Else the alive node advertising the device (first by node id)."""
    try:
        import ray
    except ImportError:
        return None
    if not ray.is_initialized():
        return None
    from harness.cluster.connection import device_resource

    resource = device_resource(device)
    here = ray.get_runtime_context().get_node_id()
    nodes = [n for n in ray.nodes() if n.get("Alive") and n["Resources"].get(resource, 0) >= 1]
    if any(n["NodeID"] == here for n in nodes):
        return None
    if not nodes:
        raise MethodError(f"the search needs latencies from a {device} agent, and no node of "
                          f"the cluster advertises {resource!r}")
    node = sorted(nodes, key=lambda n: n["NodeID"])[0]
    return {"node_id": node["NodeID"], "host": node.get("NodeManagerHostname", "?")}

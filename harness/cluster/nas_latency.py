"""NAS candidate latencies from the cluster: when the build node is not an agent of the
search's device, each candidate's bytes travel to an agent of that device as a Ray task,
which times it in a fresh worker (the same as a sweep cell). The build task hands this
service to the search through the latency_service seam (harness.methods.nas_latency)."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

from harness.cluster.connection import HOST_SLOT, device_resource
from harness.methods.context import MethodError
from harness.methods.nas_latency import CANDIDATE_MEASURE, LatencyService, candidate_payload

REMOTE_TIMEOUT_S = 300.0


def measure_bytes_task(files: dict, runtime: str, device: str) -> dict:
    """On a remote agent: write the candidate and its inputs to a temp folder, verify and
    time them in a fresh worker process (agents.launcher). A CellResult as JSON."""
    from agents.launcher import run_cell

    with tempfile.TemporaryDirectory(prefix="harness-nas-") as tmp:
        paths = {}
        for name, blob in files.items():
            paths[name] = Path(tmp) / name
            paths[name].write_bytes(base64.b64decode(blob))
        payload = candidate_payload(paths["artifact"], paths["pack.npz"], runtime, device)
        return run_cell(payload, CANDIDATE_MEASURE["timeout_s"]).to_json()


class ClusterLatencyService(LatencyService):
    def __init__(self, fmt, device, cache_dir, inputs):
        super().__init__(fmt, device, cache_dir, inputs)
        self.target = _pick_target(device)   # None: this node is an agent of the device

    def where(self) -> str:
        return super().where() if self.target is None else self.target["host"]

    def measure(self, artifact: Path):
        if self.target is None:
            return super().measure(artifact)
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from agents.cell import CellResult

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
        return CellResult.from_json(ray.get(ref))


def _pick_target(device: str) -> dict | None:
    """None when this process may measure here: this node is an agent of `device`. Else
    the alive node advertising the device (first by node id)."""
    import ray

    if not ray.is_initialized():
        return None
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

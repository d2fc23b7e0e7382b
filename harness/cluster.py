"""Starting or joining the Ray cluster, and what it advertises.

Resources: `build` on build nodes, `device:<kind>` per device kind an agent serves, and
`host_slot` (one per host): every build and every measurement takes the host's slot, so a
measurement never runs beside another measurement or a build on the same host."""

from __future__ import annotations

import os
from dataclasses import dataclass

BUILD = "build"
HOST_SLOT = "host_slot"
EMBEDDED_OBJECT_STORE_BYTES = 512 * 2**20


def device_resource(kind: str) -> str:
    return f"device:{kind}"


@dataclass
class ClusterInfo:
    address: str | None           # None: the embedded local node
    resources: dict[str, float]

    def has(self, resource: str) -> bool:
        return self.resources.get(resource, 0) >= 1


def _loopback_only() -> None:
    """Keep the embedded node on loopback. Ray turns a 127.0.0.1 node address into the
    host's routable IP unless it runs in its single-machine mode (the one it uses on macOS
    and Windows), which this switch selects; it must be set before `import ray`."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def _ray_env() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    # Ray starts workers at nice 15 and a measurement process inherits it: on a busy host
    # that would time the scheduler, not the model. Agents' workers run at normal priority.
    os.environ.setdefault("RAY_worker_niceness", "0")
    # Ray's C++ failure-signal handler turns a SIGTERM that arrives during ray.init into an
    # abort (exit -6), before the sweep can mark its run interrupted. Crashes of Ray
    # workers are still reported (WorkerCrashedError); only their C++ stack dump is lost.
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")


def connect(address: str | None, device_kinds: list[str]) -> ClusterInfo:
    """Embedded default: a local node on loopback that is both build node and agent for the
    device kinds detected here. With an address: join that cluster as a driver only."""
    _ray_env()
    if not address:
        _loopback_only()
    import ray

    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        resources = {BUILD: 1, HOST_SLOT: 1} | {device_resource(k): 1 for k in device_kinds}
        # address="local": always a new node of our own, never a cluster some earlier
        # `ray start` left running on this host.
        ray.init(address="local", num_cpus=os.cpu_count() or 1, resources=resources,
                 include_dashboard=False,
                 log_to_driver=False, _node_ip_address="127.0.0.1",
                 object_store_memory=EMBEDDED_OBJECT_STORE_BYTES)
    return ClusterInfo(address=address, resources=dict(ray.cluster_resources()))


def shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()

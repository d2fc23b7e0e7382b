"""Starting or joining the Ray cluster, and what it advertises.

Resources: `build` on build nodes, `device:<kind>` per device kind an agent serves, and
`host_slot` (one per host): every build and every measurement takes the host's slot, so a
measurement never runs beside another measurement or a build on the same host."""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import threading
from dataclasses import dataclass

from harness.cluster.loopback import is_loopback, keep_on_loopback
from harness.errors import InputError

BUILD = "build"
HOST_SLOT = "host_slot"
EMBEDDED_OBJECT_STORE_BYTES = 512 * 2**20
PROBE_TIMEOUT_S = 5.0       # TCP check of --address before Ray is asked to connect
CONNECT_TIMEOUT_S = 90.0    # ray.init to a reachable address must return within this


LABEL_PREFIX = "harness"
_LABEL_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


def label_value(text: str) -> str:
    """A Ray (Kubernetes-syntax) label value: <= 63 chars of [A-Za-z0-9_.-], alphanumeric at
    both ends. CPU and GPU names carry spaces, '@' and parentheses: those become '-'."""
    value = _LABEL_BAD.sub("-", str(text)).strip("-_.")[:63]
    return value.rstrip("-_.")


def label(key: str) -> str:
    """The name of a node label the harness sets (`harness agent start`)."""
    return f"{LABEL_PREFIX}/{key}"


def device_resource(kind: str) -> str:
    return f"device:{kind}"


@dataclass
class ClusterInfo:
    address: str | None           # None: the embedded local node
    resources: dict[str, float]
    nodes: int = 1                # alive nodes when the sweep started
    # device kinds with an agent whose int8 kernels can saturate (x86 without VNNI)
    saturating_kinds: frozenset = frozenset()

    def has(self, resource: str) -> bool:
        return self.resources.get(resource, 0) >= 1


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


def connect(address: str | None, device_kinds: list[str], *,
            verbose: bool = False) -> ClusterInfo:
    """Embedded default: a local node on loopback that is both build node and agent for the
    device kinds detected here. With an address: join that cluster as a driver only. Ray's
    own INFO and WARNING lines (its start banner, the token-authentication notice the README
    explains) are shown only when `verbose`."""
    level = logging.INFO if verbose else logging.ERROR
    _ray_env()
    if not address or is_loopback(_split_address(address)[0]):
        keep_on_loopback()  # before `import ray`, which reads it (harness.cluster.loopback)
    import ray

    if address:
        connect_driver(address, level)
    else:
        resources = {BUILD: 1, HOST_SLOT: 1} | {device_resource(k): 1 for k in device_kinds}
        # address="local": always a new node of our own, never a cluster some earlier
        # `ray start` left running on this host.
        ray.init(address="local", num_cpus=os.cpu_count() or 1, resources=resources,
                 include_dashboard=False,
                 log_to_driver=False, _node_ip_address="127.0.0.1", logging_level=level,
                 object_store_memory=EMBEDDED_OBJECT_STORE_BYTES)
    alive = [n for n in ray.nodes() if n.get("Alive")]
    return ClusterInfo(address=address, resources=dict(ray.cluster_resources()),
                       nodes=len(alive), saturating_kinds=_saturating_kinds(
                           alive, None if address else device_kinds))


def _saturating_kinds(nodes: list[dict], local_kinds: list[str] | None) -> frozenset:
    """Device kinds some agent of which has int8 kernels that saturate: from this host for
    the embedded node, else from each node's label (set by `harness agent start`)."""
    if local_kinds is not None:
        from agents.devices import int8_saturates
        return frozenset(k for k in local_kinds if k != "nvidia-gpu" and int8_saturates())
    kinds = set()
    for node in nodes:
        if (node.get("Labels") or {}).get(label("int8-saturates")) == "true":
            kinds.update(r.split(":", 1)[1] for r in node.get("Resources", {})
                         if r.startswith("device:") and r != "device:nvidia-gpu")
    return frozenset(kinds)


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--address must be HOST:PORT (the head's GCS port, 6379 unless "
                         f"changed), got {address!r}", field="--address")
    return host.strip("[]"), int(port)


def probe(address: str) -> None:
    """Fail in seconds, with a clear message, where nothing listens at `address`: ray.init
    itself would retry for minutes."""
    host, port = _split_address(address)
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise InputError(f"no Ray cluster answers at {address} ({exc.strerror or exc}); start "
                         "one with `harness agent start --head` or check the address and "
                         "firewall", field="--address") from None


def connect_driver(address: str, logging_level: int = logging.INFO) -> None:
    """Join the cluster at `address` as a driver (no resources of its own), bounded: a
    reachable port that is not a Ray head ends the process after CONNECT_TIMEOUT_S."""
    _ray_env()
    probe(address)
    if is_loopback(_split_address(address)[0]):
        # a cluster on this machine's loopback: the driver stays there too, which only
        # works if Ray is imported after the switch
        keep_on_loopback()
        if "ray" in sys.modules:
            from ray._private import ray_constants
            if ray_constants.ENABLE_RAY_CLUSTER:
                raise RuntimeError("Ray was imported before the loopback switch was set")
    _token_auth(logging_level)
    import ray

    def give_up():
        print(f"harness: error: {address} accepts connections but no Ray cluster answered "
              f"within {CONNECT_TIMEOUT_S:.0f} s (is it a Ray head's GCS port? does this host "
              "have the cluster's token?)", file=sys.stderr, flush=True)
        os._exit(2)

    timer = threading.Timer(CONNECT_TIMEOUT_S, give_up)
    timer.daemon = True
    timer.start()
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging_level)
    except (ConnectionError, RuntimeError) as exc:  # AuthenticationError is a RuntimeError
        raise InputError(f"could not join the Ray cluster at {address}: "
                         f"{_first_line(exc)}. If the cluster uses token authentication "
                         "(the default), this host needs its token in ~/.ray/auth_token, "
                         "RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN", field="--address") from None
    finally:
        timer.cancel()


def _first_line(exc: BaseException) -> str:
    causes = [exc, exc.__cause__] if exc.__cause__ else [exc]
    text = " / ".join(str(c).strip().splitlines()[-1] for c in causes if str(c).strip())
    return text[:400] or type(exc).__name__


def _token_auth(logging_level: int = logging.INFO) -> None:
    """A driver joining a cluster speaks token authentication when this host has a token:
    Ray does this by itself only for `ray start` and new local clusters. (Ray caches its
    config at import, so its own helper, which re-reads it, is used.) Its notice that token
    authentication is on is shown at the driver's logging level (the README explains it)."""
    from ray._private.authentication import authentication_token_setup as setup

    logging.getLogger(setup.__name__).setLevel(max(logging_level, logging.INFO))
    setup.maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def alive_resources() -> dict[str, float]:
    import ray

    return dict(ray.cluster_resources())


def shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()

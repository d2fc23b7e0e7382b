"""`harness agent start` and `harness agents`: join a host to a Ray cluster as a device agent
(a real `ray start`), and list the agents a cluster has.

An agent node advertises one `device:<kind>` resource per device kind it serves, the host's
`host_slot`, `build` where it builds, and labels (host, CPU model, GPU name, runtime
versions, emulated). Ray's token authentication stays on: the head creates a token when none
exists, and joining nodes must carry the same one."""

from __future__ import annotations

import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.cluster.connection import BUILD, HOST_SLOT, device_resource, label, label_value
from harness.cluster.loopback import LOOPBACK_IP, address_host, is_loopback, keep_on_loopback
from harness.cluster.tasks import COMPILE_CACHE_ENV, agent_cache
from harness.errors import InputError

STOP_TIMEOUT_S = 60       # after Ctrl-C / SIGTERM, the node is killed if it has not stopped


@dataclass
class NodeSpec:
    resources: dict[str, float]
    labels: dict[str, str]
    kinds: list[str]
    emulated: bool


def node_spec(report: dict, *, as_kind: str | None = None, build: bool = False,
              name: str | None = None) -> NodeSpec:
    """What a node advertises, from a `agents.devices.host_report()`."""
    kinds = [as_kind] if as_kind else list(report["hardware_kinds"])
    # advertised without the hardware, or this host runs under an emulator (qemu)
    emulated = (bool(as_kind and as_kind not in report["hardware_kinds"])
                or bool(report.get("emulator")))
    resources = {device_resource(k): 1.0 for k in kinds} | {HOST_SLOT: 1.0}
    if build:
        resources[BUILD] = 1.0
    labels = {label("host"): label_value(name or report["host"]),
              label("kinds"): label_value(".".join(kinds) or "none"),
              label("cpu-model"): label_value(report["cpu_model"]),
              label("emulated"): "true" if emulated else "false",
              # int8 kernels without VNNI can saturate: `reduce_range: auto` reads this
              label("int8-saturates"): "true" if report.get("int8_saturates") else "false"}
    if report["gpus"]:
        labels[label("gpu-name")] = label_value(report["gpus"][0]["name"])
        labels[label("gpu-driver")] = label_value(report["gpus"][0]["driver"])
    for runtime, entry in report["runtimes"].items():
        if "version" in entry:
            labels[label(f"rt-{runtime}")] = label_value(entry["version"].split("+")[0])
    return NodeSpec(resources, {k: v for k, v in labels.items() if v}, kinds, emulated)


def _ray_binary() -> str:
    candidate = Path(sys.executable).parent / "ray"
    return str(candidate) if candidate.is_file() else "ray"


def _token_env(head: bool) -> dict:
    """Token authentication on, with a token: the head makes one if none exists; a joining
    node must have the head's (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)."""
    env = dict(os.environ)
    env["RAY_AUTH_MODE"] = "token"
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    token_file = Path(env.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if env.get("RAY_AUTH_TOKEN") or token_file.is_file():
        return env
    if not head:
        raise InputError("token authentication is on and this host has no Ray token: copy the "
                         "head's ~/.ray/auth_token here (same path), or set RAY_AUTH_TOKEN or "
                         "RAY_AUTH_TOKEN_PATH", field="--address")
    from ray._private.authentication.authentication_token_setup import generate_and_save_token

    generate_and_save_token()  # ~/.ray/auth_token, as `ray get-auth-token --generate` does
    return env


def ray_start_command(spec: NodeSpec, *, address: str | None, head: bool, port: int,
                      node_ip: str | None, num_cpus: int | None) -> list[str]:
    import json

    loopback = is_loopback(node_ip) or is_loopback(address_host(address))
    # a loopback node starts through the launcher that keeps Ray from rewriting 127.0.0.1
    launcher = ([sys.executable, "-m", "harness.cluster.ray_start_loopback"] if loopback
                else [_ray_binary()])
    cmd = [*launcher, "start", "--block", "--disable-usage-stats",
           "--resources", json.dumps(spec.resources),
           "--labels", ",".join(f"{k}={v}" for k, v in spec.labels.items())]
    if head:
        cmd += ["--head", "--port", str(port), "--include-dashboard", "false"]
    else:
        cmd += ["--address", address]
    if node_ip or loopback:
        cmd += ["--node-ip-address", node_ip or LOOPBACK_IP]
    if num_cpus is not None:
        cmd += ["--num-cpus", str(num_cpus)]
    return cmd


def start_agent(*, address: str | None, head: bool, as_kind: str | None, build: bool,
                name: str | None, port: int, node_ip: str | None, num_cpus: int | None,
                dry_run: bool = False, out=print) -> int:
    """Run `ray start --block` for this host in the foreground until Ctrl-C / SIGTERM, which
    stop the node (Ray stops every process it started for it)."""
    from agents.devices import DEVICE_KINDS, EMULATED_ENV, host_report

    if head == bool(address):
        raise InputError("give exactly one of --head (start a cluster) or --address HOST:PORT "
                         "(join one)", field="agent start")
    if address and not re.fullmatch(r"[\w.\-\[\]:]+:\d{1,5}", address):
        raise InputError(f"--address must be HOST:PORT, got {address!r}", field="--address")
    if as_kind and as_kind not in DEVICE_KINDS:
        raise InputError(f"--as {as_kind!r} is not a device kind (allowed: "
                         f"{', '.join(DEVICE_KINDS)})", field="--as")
    report = host_report(as_kind)
    spec = node_spec(report, as_kind=as_kind, build=build or head, name=name)
    if not spec.kinds and not (build or head):
        raise InputError("this host has no device kind the harness measures (see `harness "
                         "doctor`); use --as KIND to emulate one or --build for a build node",
                         field="agent start")
    cmd = ray_start_command(spec, address=address, head=head, port=port, node_ip=node_ip,
                            num_cpus=num_cpus)
    env = _token_env(head) if not dry_run else dict(os.environ)
    if cmd[1:3] == ["-m", "harness.cluster.ray_start_loopback"]:
        keep_on_loopback(env)
    if as_kind:
        env[EMULATED_ENV] = as_kind  # the node's workers record their kind as emulated
    # torch.compile's caches beside the agent's artifact cache (a user's own setting wins)
    env.setdefault(COMPILE_CACHE_ENV, str(agent_cache() / "inductor"))
    out(f"agent on {report['host']}: serves {', '.join(spec.kinds) or 'no device'}"
        + (" (emulated)" if spec.emulated else "") + (", builds" if BUILD in spec.resources
                                                      else ""))
    out("advertises " + ", ".join(f"{k}={v:g}" for k, v in spec.resources.items()))
    out("labels " + ", ".join(f"{k}={v}" for k, v in spec.labels.items()))
    out("$ " + shlex.join(cmd))
    if head:
        out(f"join other hosts with: harness agent start --address {_head_ip(node_ip)}:{port} "
            "(copy this host's ~/.ray/auth_token to them first); sweep with --address "
            f"{_head_ip(node_ip)}:{port}")
    if dry_run:
        return 0
    return _run_foreground(cmd, env, out)


def _head_ip(node_ip: str | None) -> str:
    if node_ip:
        return node_ip
    from ray.util import get_node_ip_address
    return get_node_ip_address()


def _run_foreground(cmd: list[str], env: dict, out) -> int:
    """`ray start --block` as a child; Ctrl-C or SIGTERM stop it (and so the node)."""
    proc = subprocess.Popen(cmd, env=env)
    stopping = []

    def forward(signum, frame):
        stopping.append(signum)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code, asked = None, None
        while code is None:
            try:
                code = proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                if stopping and asked is None:
                    asked = time.monotonic()
                if asked is not None and time.monotonic() - asked > STOP_TIMEOUT_S:
                    proc.kill()  # Ray did not drain the node in time
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if proc.poll() is None:
            proc.kill()
    if stopping:  # asked to stop: Ray drains the node and exits (its code is 1 then)
        out(f"agent stopped on {signal.Signals(stopping[0]).name}")
        return 0
    out(f"agent ended: ray start exited with {code} (its log above says why)")
    return 0 if code == 0 else 1


def list_agents(address: str) -> list[dict]:
    """Alive nodes of the cluster at `address`, with what they advertise."""
    from harness.cluster.connection import connect_driver, shutdown

    connect_driver(address, logging.ERROR)  # before `import ray`: it selects loopback mode
    import ray

    try:
        nodes = ray.nodes()
    finally:
        shutdown()
    agents = []
    for node in nodes:
        if not node.get("Alive"):
            continue
        labels = node.get("Labels") or {}
        resources = node.get("Resources") or {}
        agents.append({
            "node_id": node["NodeID"], "address": node.get("NodeManagerAddress"),
            "host": labels.get(label("host")) or node.get("NodeManagerHostname"),
            "kinds": sorted(r.split(":", 1)[1] for r in resources if r.startswith("device:")),
            "build": resources.get(BUILD, 0) >= 1,
            "emulated": labels.get(label("emulated")) == "true",
            "cpu_model": labels.get(label("cpu-model")),
            "gpu_name": labels.get(label("gpu-name")),
            "runtimes": {k.split("/rt-", 1)[1]: v for k, v in labels.items() if "/rt-" in k},
            "cpus": resources.get("CPU", 0)})
    return agents

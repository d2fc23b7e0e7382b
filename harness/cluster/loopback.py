"""Ray on the loopback interface: one machine's several nodes (the README's walkthrough, the
multi-node tests) that send traffic to 127.0.0.1 only.

Ray rewrites a loopback address (127.0.0.1, localhost, ::1) into the host's routable IP in
its multi-node mode, for the node it starts and for the cluster address it joins, so a
"local" cluster still binds and dials the machine's outward address. Its single-machine
mode (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, the one it uses on macOS and Windows) keeps
loopback as it is, but `ray start --address` refuses to join a cluster in that mode. So:
drivers and every process a loopback node starts run in the single-machine mode, and the
`ray start` of a loopback node runs through `harness.cluster.ray_start_loopback`, which
lets it join while keeping its addresses as given."""

from __future__ import annotations

import ipaddress
import os

SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOOPBACK_IP = "127.0.0.1"


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def address_host(address: str | None) -> str | None:
    """HOST of HOST:PORT (IPv6 in brackets allowed)."""
    if not address or ":" not in address:
        return None
    return address.rsplit(":", 1)[0].strip("[]")


def keep_on_loopback(env: dict | None = None) -> dict:
    """Select Ray's single-machine mode in `env` (this process's environment by default);
    it takes effect only where it is set before `import ray`."""
    target = os.environ if env is None else env
    target[SINGLE_MACHINE_ENV] = "0"
    return target

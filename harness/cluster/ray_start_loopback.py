"""`ray start` for a node on loopback (see harness.cluster.loopback): run as
`python -m harness.cluster.ray_start_loopback start --address 127.0.0.1:PORT ...`.

The processes this node starts inherit Ray's single-machine mode from the environment and
so keep 127.0.0.1. This process alone needs two changes to Ray's CLI, because its worker
node path aborts in that mode ("Multi-node Ray clusters are not supported on Windows and
OSX") and otherwise rewrites 127.0.0.1 to the routable IP: multi-node mode on for the
check, and loopback addresses left as they are."""

from __future__ import annotations

import sys

from harness.cluster.loopback import is_loopback, keep_on_loopback


def main() -> None:
    keep_on_loopback()  # inherited by every process the node starts
    import ray._private.ray_constants as ray_constants
    import ray._private.services as services
    from ray.scripts.scripts import main as ray_main

    resolve = services.resolve_ip_for_localhost

    def keep_loopback(host: str) -> str:
        return host if is_loopback(host) else resolve(host)

    services.resolve_ip_for_localhost = keep_loopback
    ray_constants.ENABLE_RAY_CLUSTER = True
    sys.argv = ["ray", *sys.argv[1:]]
    ray_main()


if __name__ == "__main__":
    main()

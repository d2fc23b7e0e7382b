"""What runs on cluster nodes, as plain functions (the coordinator makes them remote).

A build runs in the Ray worker on a `build` node; a measurement starts a fresh worker
process on the device's agent (agents.launcher), so a runtime crash costs one cell.

Artifacts reach an agent either by path (one host, or a shared folder) or through Ray's
object store: the build task then also returns the files' bytes, the agent writes them into
its own cache, and the worker checks the sha256 before it loads anything."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

FETCH_TIMEOUT_S = 600.0     # an artifact that cannot be fetched in this long fails the cell
AGENT_CACHE_ENV = "HARNESS_AGENT_CACHE"
# torch.compile's caches (inductor's FX graphs and kernels): a worker that measures a torch
# cell compiles from them, so a rerun does not compile again
COMPILE_CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"


def _files(entry: dict) -> dict[str, bytes]:
    from agents.artifacts import artifact_files

    return {f.name: f.read_bytes()
            for f in artifact_files(entry["path"], entry.get("companions", ()))}


def build_task(request, ship: bool = False) -> tuple[dict, dict | None]:
    """(manifest, files): files are the artifact's and the eval pack's bytes when they must
    travel through the object store, else None."""
    import dataclasses

    from harness.build.variant import build_variant
    from harness.cluster.nas_latency import ClusterLatencyService

    # NAS candidates are timed on an agent of the search's device, wherever this build runs
    manifest = build_variant(dataclasses.replace(request, latency_service=ClusterLatencyService))
    if not ship:
        return manifest, None
    return manifest, {"artifact": _files({"path": manifest["artifact_path"],
                                          "companions": manifest.get("companions", [])}),
                      "eval_pack": _files({"path": manifest["eval_pack"]["path"]})}


def agent_cache() -> Path:
    return Path(os.environ.get(AGENT_CACHE_ENV) or
                Path(tempfile.gettempdir()) / "harness-agent-cache")


def _materialize(ref, files: dict[str, bytes]):
    """Write shipped files under the agent's cache (keyed by their digest; kept when already
    there and whole) and point the reference at them. The worker verifies the digest
    again."""
    import dataclasses

    from agents.artifacts import artifact_digest

    main = Path(ref.path).name
    folder = agent_cache() / ref.sha256[:32]
    target = folder / main
    try:
        if artifact_digest(target, ref.companions) == ref.sha256:
            return dataclasses.replace(ref, path=str(target))
    except OSError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        tmp.replace(folder / name)
    return dataclasses.replace(ref, path=str(target))


def _node_identity() -> dict:
    """Which agent ran this: its node id and the labels `harness agent start` set."""
    import ray

    from harness.cluster.connection import label

    context = ray.get_runtime_context()
    labels = context.get_node_labels() or {}
    identity = {"node_id": context.get_node_id()}
    if labels.get(label("host")):
        identity["host"] = labels[label("host")]
    if labels.get(label("emulated")) == "true":
        identity["emulated"] = True
    return identity


def measure_task(payload: dict, timeout_s: float, shipped: list | None = None) -> dict:
    """`payload` is a CellPayload as JSON (agents/cell.py); the result a CellResult as JSON.
    `shipped` is [ObjectRef of build_task's files] (a list, so Ray does not fetch it unless
    this agent needs it), or None when paths are shared."""
    import dataclasses

    from agents.cell import CellPayload, CellResult
    from agents.launcher import run_cell

    cell = CellPayload.from_json(payload)
    identity = _node_identity()
    if shipped:
        import ray

        try:
            files = ray.get(shipped[0], timeout=FETCH_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - timeout or lost object: this cell fails
            return _stamped(CellResult.failed(
                f"could not fetch the artifact from the object store: "
                f"{type(exc).__name__}: {exc}"), cell.device, identity).to_json()
        cell = dataclasses.replace(
            cell, artifact=_materialize(cell.artifact, files["artifact"]),
            eval_pack=_materialize(cell.eval_pack, files["eval_pack"]))
    return _stamped(run_cell(cell, timeout_s), cell.device, identity).to_json()


def _stamped(result, kind: str, identity: dict):
    """Every result, failed ones included, says which agent produced it."""
    from agents.devices import fingerprint

    result.agent = identity
    device = result.device or fingerprint(kind)
    result.device = device | {k: v for k, v in identity.items() if k in ("host", "emulated")}
    result.runtime = (result.runtime or {}) | {"node_id": identity["node_id"]}
    return result

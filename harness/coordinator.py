"""Ray coordinator: one build task per distinct variant, then one measure task per cell on
an agent advertising the cell's device; results are handed on as they arrive (ray.wait).

Nothing here waits forever: a cell whose device no node advertises is reported unavailable
before anything is submitted (Ray would keep such a task pending), and every measurement
has its own timeout inside the agent."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from harness.cluster import BUILD, HOST_SLOT, ClusterInfo, device_resource
from harness.spec import Cell, Plan
from harness.store import utcnow

WAIT_SLICE_S = 0.5          # ray.wait timeout: keeps Ctrl-C and the progress bar responsive
MEASURE_NODE_RETRIES = 2    # a node that dies mid-measure: retry the cell this many times


@dataclass
class CellOutcome:
    cell: Cell
    status: str                       # ok | failed | timeout | unavailable
    error: str | None = None
    variant: dict | None = None
    result: dict | None = None
    started_at: datetime | None = None


@dataclass
class Callbacks:
    on_variant: Callable[[dict], None]
    on_cell: Callable[[CellOutcome], None]
    on_phase: Callable[[str], None] = lambda text: None
    stop_requested: Callable[[], bool] = lambda: False  # checked between results


@dataclass
class Coordinator:
    plan: Plan
    cluster: ClusterInfo
    cache_dir: str
    callbacks: Callbacks
    pending: dict = field(default_factory=dict)

    def _remote(self):
        import ray

        from harness.tasks import build_task, measure_task
        return (ray.remote(max_retries=1)(build_task),
                ray.remote(max_retries=MEASURE_NODE_RETRIES)(measure_task))

    def _measure_payload(self, cell: Cell, manifest: dict) -> dict:
        pack = manifest["eval_pack"]
        return {"cell_id": cell.cell_id, "device": cell.device, "runtime": manifest["runtime"],
                "precision": manifest["precision"],
                "artifact": {"path": manifest["artifact_path"], "sha256": manifest["sha256"],
                             "companions": manifest.get("companions", [])},
                "eval_pack": {"path": pack["path"], "sha256": pack["sha256"]},
                "measure": self.plan.loaded.matrix.measure.model_dump()}

    def _requests(self, cells: list[Cell]):
        from harness.build import VariantRequest

        matrix = self.plan.loaded.matrix
        by_variant: dict[tuple, list[Cell]] = defaultdict(list)
        for cell in cells:
            by_variant[cell.variant_name].append(cell)
        for (model, method, fmt), group in by_variant.items():
            request = VariantRequest(model=matrix.model(model), method=method,
                                     steps=tuple(matrix.steps(method)), format=fmt,
                                     base_dir=str(self.plan.loaded.base_dir),
                                     cache_dir=self.cache_dir)
            yield request, group

    @staticmethod
    def _build_resources(request) -> dict:
        """A build takes a build node's slot; a format whose artifact is specific to the
        device (a TensorRT engine) is built by an agent of that device instead."""
        from harness.formats import FORMATS

        builds_on = FORMATS[request.format].builds_on
        if builds_on:
            return {device_resource(builds_on): 1, HOST_SLOT: 1}
        return {BUILD: 1, HOST_SLOT: 1}

    def _reachable(self, cells: list[Cell]) -> list[Cell]:
        runnable = []
        for cell in cells:
            if not self.cluster.has(BUILD):
                self.callbacks.on_cell(CellOutcome(cell, "unavailable",
                                                   "no node of the cluster advertises 'build'"))
            elif not self.cluster.has(device_resource(cell.device)):
                self.callbacks.on_cell(CellOutcome(
                    cell, "unavailable",
                    f"no agent advertises {device_resource(cell.device)!r}: join a node with "
                    f"that device to the cluster, e.g. `ray start --address HEAD:PORT "
                    f"--resources '{{\"{device_resource(cell.device)}\": 1, "
                    f"\"{HOST_SLOT}\": 1}}'`"))
            else:
                runnable.append(cell)
        return runnable

    def run(self, cells: list[Cell] | None = None) -> None:
        import ray

        build_remote, measure_remote = self._remote()
        cells = self._reachable(list(self.plan.cells if cells is None else cells))
        timeout_s = self.plan.loaded.matrix.measure.timeout_s
        for request, group in self._requests(cells):
            ref = build_remote.options(num_cpus=1, resources=self._build_resources(request)
                                       ).remote(request)
            self.pending[ref] = ("build", request, group)
        self.callbacks.on_phase("building variants")
        try:
            while self.pending:
                if self.callbacks.stop_requested():
                    raise KeyboardInterrupt("stop requested")
                ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=WAIT_SLICE_S)
                for ref in ready:
                    kind, *info = self.pending.pop(ref)
                    if kind == "build":
                        self._on_build(ref, *info, measure_remote, timeout_s)
                    else:
                        self._on_measure(ref, *info)
        except BaseException:
            for ref in self.pending:
                ray.cancel(ref, force=True)
            self.pending.clear()
            raise

    def _on_build(self, ref, request, group: list[Cell], measure_remote, timeout_s) -> None:
        import ray

        try:
            manifest = ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - a failed build fails its cells only
            error = f"build failed: {_ray_error_text(exc)}"
            for cell in group:
                self.callbacks.on_cell(CellOutcome(cell, "failed", error))
            return
        self.callbacks.on_variant(manifest)
        self.callbacks.on_phase("measuring")
        for cell in group:
            payload = self._measure_payload(cell, manifest)
            ref = measure_remote.options(
                num_cpus=1, resources={device_resource(cell.device): 1, HOST_SLOT: 1}
            ).remote(payload, timeout_s)
            self.pending[ref] = ("measure", cell, manifest, utcnow())

    def _on_measure(self, ref, cell: Cell, manifest: dict, submitted: datetime) -> None:
        import ray

        try:
            result = ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - the node or task died: this cell fails
            self.callbacks.on_cell(CellOutcome(cell, "failed", _ray_error_text(exc),
                                               variant=manifest, started_at=submitted))
            return
        status = result.get("status", "failed")
        self.callbacks.on_cell(CellOutcome(cell, status if status in ("ok", "timeout") else
                                           "failed", result.get("error"), variant=manifest,
                                           result=result, started_at=submitted))


def _ray_error_text(exc: Exception) -> str:
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-12:])[-3000:] or type(exc).__name__

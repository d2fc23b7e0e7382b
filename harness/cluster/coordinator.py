"""Ray coordinator: one build task per distinct variant, then one measure task per cell on
an agent advertising the cell's device; results are handed on as they arrive (ray.wait).

Results stream: builds are submitted a build slot at a time, cheapest first (no training
before trained variants), and each build's measurements go out as soon as it is done. On a
one-node cluster, where a build and a measurement share the host, the next build waits
until the previous variant's measurements are done; otherwise every build would be queued
ahead of every measurement and the first row would come after the last build.

Nothing here waits forever: a cell whose device no node advertises is reported unavailable
before anything is submitted (Ray would keep such a task pending), every measurement has its
own timeout inside the agent, a task whose node dies is retried on another node of its kind
a bounded number of times, and a queued task whose resource no alive node offers any more is
cancelled and its cells failed."""

from __future__ import annotations

import os
import re
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from harness.cluster.connection import BUILD, HOST_SLOT, ClusterInfo, alive_resources, device_resource
from harness.matrix.expand import Cell, Plan
from harness.results.store import utcnow

WAIT_SLICE_S = 0.5          # ray.wait timeout: keeps Ctrl-C and the progress bar responsive
LIVENESS_EVERY_S = 2.0      # how often queued tasks are checked against the alive nodes
MEASURE_NODE_RETRIES = 2    # a node that dies mid-measure: retry the cell this many times
BUILD_NODE_RETRIES = 1
TRANSPORT_ENV = "HARNESS_ARTIFACTS"  # auto (default) | object-store | shared


def ship_artifacts(cluster: ClusterInfo) -> bool:
    """Through the object store on a cluster of several nodes, unless the user says the
    artifact cache is a folder every node sees (HARNESS_ARTIFACTS=shared)."""
    mode = os.environ.get(TRANSPORT_ENV, "auto")
    if mode == "shared":
        return False
    if mode == "object-store":
        return True
    return cluster.nodes > 1


@dataclass
class _Task:
    kind: str                   # build | measure
    resources: dict
    cells: list[Cell]
    submit: Callable[[], object]  # (re)submits the task, returns its ObjectRef
    attempt: int = 1
    manifest: dict | None = None
    shipped: object = None      # the build's files ObjectRef (object-store transport)
    submitted: datetime | None = None
    failures: list[str] = field(default_factory=list)
    build_wall_s: float | None = None  # a measure task's: its variant's build task


@dataclass
class CellOutcome:
    cell: Cell
    status: str                       # ok | failed | timeout | unavailable
    error: str | None = None
    variant: dict | None = None
    result: object | None = None      # agents.cell.CellResult
    started_at: datetime | None = None
    build_wall_s: float | None = None  # the variant's build task, submitted to done


@dataclass
class Callbacks:
    on_variant: Callable[[dict], None]
    on_cell: Callable[[CellOutcome], None]
    # the phase (building, measuring) and what it is on now: a variant or a cell
    on_phase: Callable[[str, str], None] = lambda phase, current: None
    stop_requested: Callable[[], bool] = lambda: False  # checked between results


@dataclass
class Coordinator:
    plan: Plan
    cluster: ClusterInfo
    cache_dir: str
    callbacks: Callbacks
    pending: dict = field(default_factory=dict)
    waiting_builds: deque = field(default_factory=deque)  # (request, cells), in build order
    held: list = field(default_factory=list)  # outcomes to hand on once builds are submitted

    def _report(self, outcome: CellOutcome) -> None:
        self.held.append(outcome)

    def _hand_on(self) -> None:
        """Hand on the outcomes reported since the last call. The loop calls this after it
        has submitted the next build: storing a cell's rows takes the coordinator ~0.1 s,
        which the build node need not wait for."""
        held, self.held = self.held, []
        for outcome in held:
            self.callbacks.on_cell(outcome)

    def _remote(self):
        import ray

        from harness.cluster.tasks import build_task, measure_task
        # Retries are the coordinator's (bounded, counted, only where a node of the kind is
        # alive); Ray's own would re-queue a task forever when no such node is left.
        return (ray.remote(max_retries=0, num_returns=2)(build_task),
                ray.remote(max_retries=0)(measure_task))

    def _measure_payload(self, cell: Cell, manifest: dict) -> dict:
        from agents.cell import CellPayload

        measure = self.plan.loaded.matrix.measure_for(cell.model)
        return CellPayload.from_manifest(cell.cell_id, cell.device, manifest,
                                         measure.model_dump()).to_json()

    def _requests(self, cells: list[Cell]):
        from harness.build.reduce_range import resolve as resolve_reduce_range
        from harness.build.variant import VariantRequest
        from harness.formats import FORMATS

        matrix = self.plan.loaded.matrix
        by_variant: dict[tuple, list[Cell]] = defaultdict(list)
        for cell in cells:
            by_variant[cell.variant_name].append(cell)
        for (model, method, fmt), group in by_variant.items():
            # reduce_range: auto, for the agents of the devices this variant is measured on
            saturating = any(c.device in self.cluster.saturating_kinds for c in group)
            steps = resolve_reduce_range(matrix.steps(method), FORMATS[fmt], saturating)
            request = VariantRequest(model=matrix.model(model), method=method,
                                     steps=steps, format=fmt,
                                     base_dir=str(self.plan.loaded.base_dir),
                                     cache_dir=self.cache_dir,
                                     shapes=tuple(self.plan.loaded.shapes(model)),
                                     batch_sizes=tuple(matrix.measure_for(model).batch_sizes))
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
                self._report(CellOutcome(cell, "unavailable",
                                                   "no node of the cluster advertises 'build'"))
            elif not self.cluster.has(device_resource(cell.device)):
                self._report(CellOutcome(
                    cell, "unavailable",
                    f"no agent advertises {device_resource(cell.device)!r}: join a node with "
                    f"that device to the cluster (`harness agent start --address HEAD:PORT` "
                    f"on it; see `harness agents`)"))
            else:
                runnable.append(cell)
        return runnable

    def run(self, cells: list[Cell] | None = None) -> None:
        import ray

        self._build_remote, self._measure_remote = self._remote()
        self._ship = ship_artifacts(self.cluster)
        self._timeout_s = self.plan.loaded.matrix.measure.timeout_s
        cells = self._reachable(list(self.plan.cells if cells is None else cells))
        self.waiting_builds = deque(sorted(self._requests(cells),
                                           key=lambda item: build_cost_rank(item[0].steps)))
        next_check = time.monotonic() + LIVENESS_EVERY_S
        try:
            self._submit_builds()
            self._hand_on()
            while self.pending or self.waiting_builds:
                if self.callbacks.stop_requested():
                    raise KeyboardInterrupt("stop requested")
                ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=WAIT_SLICE_S)
                try:
                    for ref in ready:
                        task = self.pending.pop(ref)
                        (self._on_build if task.kind == "build" else self._on_measure)(ref, task)
                    if time.monotonic() >= next_check:
                        self._fail_orphans()
                        next_check = time.monotonic() + LIVENESS_EVERY_S
                    self._submit_builds()
                finally:  # an outcome is stored even when the loop is left with an error
                    self._hand_on()
        except BaseException:
            for ref in self.pending:
                ray.cancel(ref, force=True)
            self.pending.clear()
            self.waiting_builds.clear()
            raise

    def _submit_builds(self) -> None:
        """Start waiting builds while a build slot is free (one node: only once the
        measurements before them are done, so each variant is measured before the next
        long build). A build that needs a device agent's slot (TensorRT) counts the same:
        it only waits its turn."""
        slots = max(1, int(self.cluster.resources.get(BUILD, 1)))
        while self.waiting_builds:
            kinds = [task.kind for task in self.pending.values()]
            if kinds.count("build") >= slots or (self.cluster.nodes == 1 and kinds):
                return
            self._submit_build(*self.waiting_builds.popleft())

    # submitting ---------------------------------------------------------------------------
    def _track(self, task: _Task) -> None:
        task.submitted = utcnow()
        self.pending[task.submit()] = task

    def _submit_build(self, request, group: list[Cell]) -> None:
        self.callbacks.on_phase("building", f"{request.model.name}/{request.method}/"
                                            f"{request.format}")
        resources = self._build_resources(request)
        holder: dict = {}

        def submit():
            manifest_ref, files_ref = self._build_remote.options(
                num_cpus=1, resources=resources).remote(request, self._ship)
            holder["files"] = files_ref
            return manifest_ref

        task = _Task("build", resources, group, submit)
        task.shipped = holder
        self._track(task)

    def _submit_measure(self, cell: Cell, manifest: dict, files_ref,
                        build_wall_s: float | None = None) -> None:
        resources = {device_resource(cell.device): 1, HOST_SLOT: 1}
        payload = self._measure_payload(cell, manifest)
        shipped = [files_ref] if files_ref is not None else None

        def submit():
            return self._measure_remote.options(num_cpus=1, resources=resources).remote(
                payload, self._timeout_s, shipped)

        task = _Task("measure", resources, [cell], submit, manifest=manifest,
                     build_wall_s=build_wall_s)
        self._track(task)

    # results ------------------------------------------------------------------------------
    def _retry_or_fail(self, task: _Task, error: str) -> bool:
        """After a node died under `task`: resubmit it if attempts are left and an alive node
        offers its resources. Returns True when resubmitted."""
        task.failures.append(error)
        limit = MEASURE_NODE_RETRIES if task.kind == "measure" else BUILD_NODE_RETRIES
        if task.attempt <= limit and not self._missing(task.resources):
            task.attempt += 1
            self.pending[task.submit()] = task
            return True
        return False

    def _on_build(self, ref, task: _Task) -> None:
        import ray

        build_wall_s = (utcnow() - task.submitted).total_seconds()
        try:
            manifest = ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - a failed build fails its cells only
            _read_failed(task.shipped.get("files"))
            if _node_lost(exc) and self._retry_or_fail(task, _ray_error_text(exc)):
                return
            error = f"build failed{_attempts(task)}: {_ray_error_text(exc)}"
            for cell in task.cells:
                self._report(CellOutcome(cell, "failed", error,
                                                   build_wall_s=build_wall_s))
            return
        files_ref = task.shipped["files"] if self._ship else None
        for cell in task.cells:  # measuring first, storing the variant while it runs
            self._submit_measure(cell, manifest, files_ref, build_wall_s)
        self.callbacks.on_variant(manifest)
        self.callbacks.on_phase("measuring", ", ".join(c.cell_id for c in task.cells))

    def _on_measure(self, ref, task: _Task) -> None:
        import ray

        from agents.cell import CellResult

        cell, manifest = task.cells[0], task.manifest
        try:
            result = CellResult.from_json(ray.get(ref))
        except Exception as exc:  # noqa: BLE001 - the node or task died: retry or fail
            if _node_lost(exc) and self._retry_or_fail(task, _ray_error_text(exc)):
                return
            self._report(CellOutcome(
                cell, "failed", f"agent lost{_attempts(task)}: {_ray_error_text(exc)}",
                variant=manifest, started_at=task.submitted,
                build_wall_s=task.build_wall_s))
            return
        status, error = result.status, result.error
        if task.failures:
            note = f"measured on attempt {task.attempt}; earlier agents died: " + " | ".join(
                f.splitlines()[-1][:200] for f in task.failures)
            error = f"{error}\n{note}" if error else note
        self._report(CellOutcome(cell, status if status in ("ok", "timeout") else
                                           "failed", error, variant=manifest,
                                           result=result, started_at=task.submitted,
                                           build_wall_s=task.build_wall_s))

    # liveness -----------------------------------------------------------------------------
    def _missing(self, resources: dict) -> list[str]:
        alive = alive_resources()
        return [r for r, n in resources.items() if alive.get(r, 0) < n]

    def _fail_orphans(self) -> None:
        """Queued tasks that no alive node can run any more (their nodes died): Ray would
        keep them pending forever, so cancel them and fail their cells."""
        import ray

        alive = alive_resources()
        for ref, task in list(self.pending.items()):
            missing = [r for r, n in task.resources.items() if alive.get(r, 0) < n]
            if not missing:
                continue
            ray.cancel(ref, force=True)
            del self.pending[ref]
            history = f" after: {' | '.join(task.failures)}" if task.failures else ""
            error = (f"no alive node advertises {', '.join(map(repr, missing))} any more "
                     f"(the agents that did have left the cluster){history}")
            for cell in task.cells:
                self._report(CellOutcome(
                    cell, "failed", error if task.kind == "measure" else
                    f"build not run: {error}", variant=task.manifest,
                    started_at=task.submitted))


def build_cost_rank(steps) -> tuple[int, int]:
    """Builds in the order that gives results soonest: format-level methods (an export and
    a quantizer) first, then model-level ones, trained ones (fine-tuning, QAT, distillation,
    NAS) last. Python's sort is stable: the plan's order within each rank."""
    from harness.methods import METHODS

    entries = [(METHODS[s.kind], s) for s in steps]
    trains = any(entry.trains(step) for entry, step in entries)
    model_level = any(entry.level == "model" and not entry.identity for entry, _ in entries)
    return int(trains), int(model_level)


def _read_failed(ref) -> None:
    """A failed build's second output holds the same error; reading it tells Ray the error
    was handled (else, when the reference is dropped, Ray prints "Unhandled error" with the
    traceback into the sweep's output)."""
    import ray

    if ref is None:
        return
    try:
        ray.get(ref)
    except Exception:  # noqa: BLE001 - the error is the build's, already reported
        pass


def _node_lost(exc: Exception) -> bool:
    """The task's node or worker process died (not an error of the task's own code)."""
    from ray import exceptions as rx

    return isinstance(exc, (rx.NodeDiedError, rx.WorkerCrashedError, rx.LocalRayletDiedError,
                            rx.ObjectLostError, rx.OutOfMemoryError))


def _attempts(task: _Task) -> str:
    return f" (after {task.attempt} attempts)" if task.attempt > 1 else ""


EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b:?")


def _ray_error_text(exc: Exception) -> str:
    """The cause first (the last exception line of the remote traceback, with the lines a
    multi-line message continues on), then the traceback's tail: the summary and the
    cells table show the first line."""
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    tail = "\n".join(lines[-12:])[-2000:]
    starts = [i for i, line in enumerate(lines) if EXCEPTION_LINE.match(line.strip())]
    if not starts or starts[-1] == 0:
        return tail or type(exc).__name__
    cause = " ".join(line.strip() for line in lines[starts[-1]:])[:1000]
    return f"{cause}\n{tail}"

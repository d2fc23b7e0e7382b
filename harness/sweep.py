"""`harness sweep`: plan, record the run, dispatch through the coordinator, stream every
result into the store as it arrives, and summarise."""

from __future__ import annotations

import hashlib
import signal
import socket
import subprocess
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import harness
from harness.coordinator import Callbacks, CellOutcome, Coordinator
from harness.spec import expand, load_matrix
from harness.store import Store


@dataclass
class SweepResult:
    run_id: str
    status: str
    counts: dict = field(default_factory=dict)


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(harness.__file__).parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def device_id(fp: dict) -> str:
    return hashlib.sha256(f"{fp['kind']}|{fp['host']}|{fp.get('name')}".encode()).hexdigest()[:16]


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (a CI job cancelled, `kill`) is handled like Ctrl-C: the run is marked
    interrupted and the database stays consistent. ray.init installs its own SIGTERM
    handler (exit 1), so `_reclaim_sigterm` is called again once Ray is up."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _reclaim_sigterm() -> None:
    signal.signal(signal.SIGTERM, _raise_interrupt)


class _Recorder:
    """Turns coordinator outcomes into store rows, and counts them for the summary."""

    def __init__(self, store: Store, run_id: str, progress: Progress, task_id):
        self.store, self.run_id = store, run_id
        self.progress, self.task_id = progress, task_id
        self.counts: dict[str, int] = {}

    def on_variant(self, manifest: dict) -> None:
        self.store.write_variant(manifest)

    def on_phase(self, text: str) -> None:
        self.progress.update(self.task_id, description=text)

    def on_cell(self, outcome: CellOutcome) -> None:
        rows, dev_id = [], None
        result = outcome.result or {}
        if result.get("device"):
            dev_id = device_id(result["device"])
            self.store.write_device(dev_id, result["device"], result.get("runtime", {}))
        pack = (outcome.variant or {}).get("eval_pack", {})
        for row in result.get("measurements", []) if outcome.status == "ok" else []:
            rows.append(row | {"accuracy_dataset": pack.get("dataset"),
                               "reference_top1": pack.get("reference_top1")})
        variant = outcome.variant or {}
        self.store.write_cell(self.run_id, outcome.cell, status=outcome.status,
                              error=outcome.error, variant_id=variant.get("variant_id"),
                              device_id=dev_id, build_cached=variant.get("cached"),
                              started_at=outcome.started_at, measurements=rows)
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
        self.progress.advance(self.task_id)


def run_sweep(matrix_path: str, db: str, *, address: str | None = None, tag: str | None = None,
              cache_dir: str = "results/cache", console: Console | None = None) -> SweepResult:
    from agents.devices import detect_kinds
    from harness.cluster import connect, shutdown

    console = console or Console()
    loaded = load_matrix(matrix_path)
    plan = expand(loaded)
    store = Store(db)
    run_id = f"{loaded.matrix.name}-{uuid.uuid4().hex[:10]}"
    store.start_run({"run_id": run_id, "matrix_name": loaded.matrix.name,
                     "matrix_hash": loaded.sha256, "matrix_yaml": loaded.text,
                     "matrix_path": str(loaded.path), "tag": tag,
                     "harness_version": harness.__version__, "git_sha": _git_sha(),
                     "host": socket.gethostname(), "address": address})
    for skipped in plan.skipped:
        store.write_cell(run_id, skipped.cell, status="skipped", error=skipped.reason)
    console.print(f"run [bold]{run_id}[/]: {len(plan.cells)} cells to measure, "
                  f"{len(plan.skipped)} skipped (see `harness plan {matrix_path}`)")
    status = "interrupted"
    progress = Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=False)
    recorder = None
    try:
        with _sigterm_as_interrupt(), progress:
            task_id = progress.add_task("starting Ray", total=len(plan.cells))
            recorder = _Recorder(store, run_id, progress, task_id)
            cluster = connect(address, detect_kinds())
            _reclaim_sigterm()
            coordinator = Coordinator(plan, cluster, str(Path(cache_dir).resolve()),
                                      Callbacks(recorder.on_variant, recorder.on_cell,
                                                recorder.on_phase))
            coordinator.run()
            progress.update(task_id, description="done")
        failed = recorder.counts.get("failed", 0) + recorder.counts.get("timeout", 0)
        status = "failed" if failed else "ok"
        return SweepResult(run_id, status, dict(recorder.counts) | {"skipped": len(plan.skipped)})
    finally:
        store.finish_run(run_id, status)
        store.close()
        shutdown()

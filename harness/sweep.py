"""`harness sweep`: plan, record the run, dispatch through the coordinator, stream every
result into the store as it arrives, and summarise."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Column
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

import harness
from harness.tasks import quality_columns
from harness.cluster.coordinator import Callbacks, CellOutcome, Coordinator
from harness.cluster.tasks import COMPILE_CACHE_ENV
from harness.errors import InputError
from harness.matrix.expand import expand
from harness.matrix.load import load_matrix
from harness.results.store import Store
from harness.results.summary import error_gist


PROGRESS_LINE_EVERY_S = 30.0


class SweepInterrupted(KeyboardInterrupt):
    def __init__(self, run_id: str):
        super().__init__(run_id)
        self.run_id = run_id


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


class _StopRequest:
    """SIGINT / SIGTERM ask the sweep to stop: the handler only sets a flag, and the
    coordinator stops at its next safe point (between two results), so a signal never lands
    inside a database write or inside Ray or DuckDB's C code, which can swallow it. A second
    signal interrupts at once. Ray installs its own SIGTERM handler (exit 1) in ray.init,
    so `claim()` is called again once Ray is up."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict = {}

    def _handler(self, signum, frame):
        if self.event.is_set():
            raise KeyboardInterrupt(f"signal {signum} (twice)")
        self.event.set()

    def claim(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.signal(sig, self._handler)
            self._previous.setdefault(sig, previous)

    def release(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)

    def requested(self) -> bool:
        return self.event.is_set()


def _cell_line(outcome: CellOutcome, rows: list[dict]) -> str:
    """One line per finished cell: readable in CI logs, where no progress bar is drawn.
    Each (batch, shape) row's p50, the quality once (it is the same for every batch), and
    what the cell cost: its variant's build (or that it came from the cache) and its
    measurement."""
    if outcome.status != "ok":
        return f"{outcome.status:<7} {outcome.cell.cell_id}  {error_gist(outcome.error)}"
    parts = [", ".join(f"b{r['batch_size']}{' ' + r['shape'] if r.get('shape') else ''} "
                       f"{r['latency_p50_ms']:.3f} ms" for r in rows) + " p50"]
    quality = next((r for r in rows if r.get("quality") is not None), None)
    if quality:
        parts.append(f"{quality['quality_metric']} {quality['quality']:.4f}")
    cost = []
    if outcome.build_wall_s is not None:
        cost.append("cached" if (outcome.variant or {}).get("cached")
                    else f"build {outcome.build_wall_s:.0f} s")
    if outcome.result is not None and outcome.result.wall_s is not None:
        cost.append(f"measure {outcome.result.wall_s:.0f} s")
    if cost:
        parts.append(", ".join(cost))
    return f"{outcome.status:<7} {outcome.cell.cell_id}  " + "; ".join(parts)


class _Recorder:
    """Turns coordinator outcomes into store rows, and counts them for the summary."""

    def __init__(self, store: Store, run_id: str, progress: Progress, task_id):
        self.store, self.run_id = store, run_id
        self.progress, self.task_id = progress, task_id
        self.unavailable: dict[str, int] = {}   # reason -> cells not yet reported
        self.done, self.last_line = 0, time.monotonic()

    def on_variant(self, manifest: dict) -> None:
        self.store.write_variant(manifest)

    def on_phase(self, phase: str, current: str = "") -> None:
        self.flush_unavailable()
        self.progress.update(self.task_id, description=phase, current=current)

    def flush_unavailable(self) -> None:
        """Cells that cannot run, one line per reason (not per cell)."""
        for reason, count in self.unavailable.items():
            self.progress.console.print(f"unavailable {count} cell{'s' * (count != 1)}: "
                                        f"{reason}", markup=False, highlight=False,
                                        soft_wrap=True)
        self.unavailable.clear()

    def _progress_line(self) -> None:
        """Not in a terminal (a CI log) there is no live bar: a plain line now and then."""
        console = self.progress.console
        if console.is_terminal or time.monotonic() - self.last_line < PROGRESS_LINE_EVERY_S:
            return
        self.last_line = time.monotonic()
        task = self.progress.tasks[0]
        eta = (f", about {task.time_remaining / 60:.0f} min left"
               if task.time_remaining is not None else "")
        current = task.fields.get("current")
        now = f"; {task.description} {current}" if current else ""
        console.print(f"progress {self.done}/{task.total:.0f} cells, "
                      f"{task.elapsed / 60:.1f} min{eta}{now}", markup=False, highlight=False,
                      soft_wrap=True)

    def on_cell(self, outcome: CellOutcome) -> None:
        rows, dev_id = [], None
        result = outcome.result
        if result is not None and result.device:
            dev_id = device_id(result.device)
            self.store.write_device(dev_id, result.device, result.runtime)
        variant = outcome.variant or {}
        pack = variant.get("eval_pack", {})
        for row in result.measurements if result is not None and outcome.status == "ok" else []:
            rows.append(row | {"accuracy_dataset": pack.get("dataset"),
                               "reference_top1": pack.get("reference_top1")}
                        | quality_columns(variant.get("task") or "classification",
                                          row.get("metrics") or {}, bool(pack.get("labelled")),
                                          row.get("precision") or variant.get("precision"),
                                          pack.get("reference_top1")))
        variant = outcome.variant or {}
        self.store.write_cell(self.run_id, outcome.cell, status=outcome.status,
                              error=outcome.error, variant_id=variant.get("variant_id"),
                              device_id=dev_id, build_cached=variant.get("cached"),
                              started_at=outcome.started_at, measurements=rows,
                              build_wall_s=outcome.build_wall_s,
                              measure_wall_s=result.wall_s if result is not None else None,
                              measure_phases=result.phases if result is not None else None)
        if outcome.status == "unavailable":
            # out of the bar's total: they take no time, and counting them as done at the
            # start would make the ETA read as if the whole sweep ran that fast
            task = self.progress.tasks[0]
            self.progress.update(self.task_id, total=max(0, (task.total or 0) - 1))
            reason = (outcome.error or "").strip()
            self.unavailable[reason] = self.unavailable.get(reason, 0) + 1
            return
        self.progress.advance(self.task_id)
        self.done += 1
        if self.progress.tasks[0].fields.get("current") == outcome.cell.cell_id:
            self.progress.update(self.task_id, current="")  # done; the next one is not known
        self.progress.console.print(_cell_line(outcome, rows), markup=False,
                                    highlight=False, soft_wrap=True)
        self._progress_line()


def _open_run(store: Store, loaded, plan, *, tag, address, resume: str | None) -> tuple[str, set]:
    """A new run, or (resume) the run to complete: returns its id and the finished cells."""
    if resume:
        run = store.run_row(resume)
        if run is None:
            raise InputError(f"no run {resume!r} in this database", file=str(store.path),
                             field="--resume")
        if run["matrix_hash"] != loaded.sha256:
            raise InputError(f"run {resume} was made from a different version of this matrix "
                             "(its hash differs); resume needs the same file",
                             file=str(loaded.path), field="--resume")
        store.reopen_run(resume)
        return resume, store.final_cells(resume)
    run_id = f"{loaded.matrix.name}-{uuid.uuid4().hex[:10]}"
    store.start_run({"run_id": run_id, "matrix_name": loaded.matrix.name,
                     "matrix_hash": loaded.sha256, "matrix_yaml": loaded.text,
                     "matrix_path": str(loaded.path), "tag": tag,
                     "harness_version": harness.__version__, "git_sha": _git_sha(),
                     "host": socket.gethostname(), "address": address})
    return run_id, set()


def _writable_folder(folder: Path, what: str) -> Path:
    """Fail at the start, not after an hour of building, when a folder cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise InputError(f"cannot write to the {what} folder: {exc.strerror or exc}",
                         file=str(folder)) from None
    return folder.resolve()


def compile_cache_here(cache: Path) -> None:
    """torch.compile's caches (inductor's FX graphs and kernels) under the artifact cache
    for the embedded node's workers, which inherit this environment: a rerun compiles from
    the cache, and clearing `results/cache` clears them with the rest. A user's own setting
    wins."""
    os.environ.setdefault(COMPILE_CACHE_ENV, str(Path(cache).resolve() / "inductor"))


def _storage_error(db: str, exc: Exception) -> InputError:
    return InputError(f"cannot write the results database ({type(exc).__name__}: {exc}); is "
                      "the disk full or the folder read-only? Every cell written before this "
                      "is kept; complete the run later with --resume", file=db)


def run_sweep(matrix_path: str, db: str, *, address: str | None = None, tag: str | None = None,
              cache_dir: str = "results/cache", resume: str | None = None,
              console: Console | None = None, verbose: bool = False) -> SweepResult:
    from agents.devices import detect_kinds
    from harness.cluster.connection import connect, probe, shutdown

    console = console or Console()
    if address:
        probe(address)  # a wrong address fails in seconds, before a run is recorded
    loaded = load_matrix(matrix_path)
    plan = expand(loaded)
    cache = _writable_folder(Path(cache_dir), "artifact cache")
    store = Store(db)
    try:
        run_id, done = _open_run(store, loaded, plan, tag=tag, address=address, resume=resume)
        for skipped in plan.skipped:
            if skipped.cell.cell_id not in done:
                store.write_cell(run_id, skipped.cell, status="skipped", error=skipped.reason)
    except (duckdb.Error, OSError) as exc:
        store.close(quiet=True)
        raise _storage_error(db, exc) from None
    except BaseException:
        store.close(quiet=True)
        raise
    todo = [c for c in plan.cells if c.cell_id not in done]
    kinds = detect_kinds()
    # the embedded node has this machine's devices only: say at once how many cells it
    # cannot run (a cluster's agents are known once connected; those lines come then)
    lacking = 0 if address else sum(1 for c in todo if c.device not in kinds)
    console.print(f"run [bold]{run_id}[/]: {len(todo) - lacking} cells to measure"
                  + (f" ({len(plan.cells) - len(todo)} already done)" if resume else "")
                  + (f", {lacking} for devices this machine lacks" if lacking else "")
                  + f", {len(plan.skipped)} skipped (see `harness plan {matrix_path}`)",
                  soft_wrap=True)  # one line in a log, however long the matrix's path
    status = "interrupted"
    progress = Progress(TextColumn("{task.description:<10}"), BarColumn(bar_width=24),
                        MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"),
                        TimeRemainingColumn(),
                        # the variant or cell now: cut to the terminal's width, never wrapped
                        TextColumn("{task.fields[current]}", markup=False,
                                   table_column=Column(no_wrap=True, overflow="ellipsis")),
                        console=console, transient=False,
                        # cells alternate long builds and short measurements: a rate over
                        # the last 10 minutes, not rich's default 30 s, keeps the ETA steady
                        speed_estimate_period=600)
    stop = _StopRequest()
    stop.claim()
    try:
        with progress:
            task_id = progress.add_task("starting", total=len(todo), current="Ray")
            recorder = _Recorder(store, run_id, progress, task_id)
            if not address:
                compile_cache_here(cache)
            cluster = connect(address, kinds, verbose=verbose)
            store.cluster_ready(run_id)
            stop.claim()
            coordinator = Coordinator(plan, cluster, str(cache),
                                      Callbacks(recorder.on_variant, recorder.on_cell,
                                                recorder.on_phase, stop.requested))
            coordinator.run(todo)
            recorder.flush_unavailable()
            progress.update(task_id, description="done", current="")
        counts = store.status_counts(run_id)
        status = "failed" if counts.get("failed", 0) + counts.get("timeout", 0) else "ok"
        return SweepResult(run_id, status, counts)
    except KeyboardInterrupt:
        raise SweepInterrupted(run_id) from None
    except SystemExit:
        # ray.init's own SIGTERM handler (sys.exit) answers a signal that came during start-up
        raise SweepInterrupted(run_id) from None
    except (duckdb.Error, OSError) as exc:
        raise _storage_error(db, exc) from None  # the run stays "interrupted": resumable
    finally:
        stop.release()
        try:
            store.finish_run(run_id, status)
        except (duckdb.Error, OSError):
            pass  # the storage error above is what the user needs to see
        store.close(quiet=True)
        shutdown()

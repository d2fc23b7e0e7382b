"""Run `agents.worker` for one cell in a fresh process with a timeout.

A segfault, a hang or an exception in a runtime costs that cell (failed / timeout, with the
signal or error and the tail of its log), never the caller. With `measure.processes: N` the
worker runs N times and the results are pooled (agents/repeats.py).

While a worker runs, this process samples the RSS of the worker's process tree every
POLL_S (for the memory limit); the peak it saw is returned as `peak_rss_sampled_mb`, beside
the worker's own exact high-water mark (VmHWM). Sampling from outside costs the timed loop
nothing, where a sampling thread inside the worker did (agents/probes/memory.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from agents.cell import CellPayload, CellResult
from agents.phases import with_launcher_view

LOG_TAIL_CHARS = 2000
POLL_S = 0.05  # how often the watchdog checks the worker's exit, clock and memory
# With no memory_limit_mb in the matrix, a worker may use this share of the memory that was
# available when it started: a runaway runtime costs its cell, not the agent host.
DEFAULT_MEMORY_SHARE = 0.8


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-LOG_TAIL_CHARS:].strip()
    except OSError:
        return ""


def _env(threads: int) -> dict:
    env = dict(os.environ)
    # Keep every thread pool in the worker at the matrix's thread count.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env["HARNESS_PARENT_PID"] = str(os.getpid())  # the worker exits if this process dies
    return env


def memory_limit_mb(measure: dict) -> tuple[float, str]:
    """The RSS limit for a worker, and where it comes from."""
    if measure.get("memory_limit_mb"):
        return float(measure["memory_limit_mb"]), "the matrix's memory_limit_mb"
    available = psutil.virtual_memory().available / 2**20
    return DEFAULT_MEMORY_SHARE * available, (f"{DEFAULT_MEMORY_SHARE:.0%} of the memory "
                                              "available when the cell started")


def _tree_rss_mb(proc: psutil.Process | None) -> float:
    if proc is None:
        return 0.0
    try:
        tree = [proc, *proc.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0  # exited (a forked worker is reaped at once by its server)
    total = 0
    for p in tree:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total / 2**20


def _kill(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it exited meanwhile
    proc.wait()


def _watch(proc: subprocess.Popen, timeout_s: float, memory_limit_mb: float | None
           ) -> tuple[int | None, str | None, float]:
    """Wait for the worker; kill its process group past the timeout or the memory limit.
    Returns (exit code or None if killed, why it was killed, peak RSS seen in MB)."""
    try:
        watched = psutil.Process(proc.pid)
    except psutil.NoSuchProcess:
        watched = None  # a forked worker that has exited already
    deadline = time.monotonic() + timeout_s
    peak = 0.0
    while True:
        code = proc.poll()
        if code is not None:
            return code, None, peak
        peak = max(peak, _tree_rss_mb(watched))
        if memory_limit_mb is not None:
            if peak > memory_limit_mb:
                _kill(proc)
                return None, "memory", peak
        if time.monotonic() >= deadline:
            _kill(proc)
            return None, "timeout", peak
        time.sleep(POLL_S)


def run_cell(cell: CellPayload, timeout_s: float) -> CellResult:
    """Measure a cell in `measure.processes` fresh workers, one after the other (each with
    `timeout_s`); the first failure ends the cell with that process's error."""
    from agents.repeats import merge_processes

    processes = int(cell.measure.get("processes", 1))
    results = []
    for index in range(processes):
        # Only the first process measures quality, profiles and runs the throughput
        # scenarios: none is a single-stream latency figure pooled between processes.
        this = cell if index == 0 else cell.with_measure(accuracy=False, profile=False,
                                                         scenarios=["single_stream"])
        result = CellResult.from_json(_run_worker(this.to_json(), timeout_s,
                                                  threads=cell.measure["threads"],
                                                  memory=memory_limit_mb(cell.measure)))
        if not result.ok:
            if processes > 1:
                result.error = f"process {index + 1} of {processes}: {result.error}"
            return result
        results.append(result)
    return merge_processes(results, cell.measure.get("noisy_cv", 0.1))


def run_pair(cells: list[CellPayload], blocks: int, block_s: float, timeout_s: float) -> dict:
    """Two artifacts of one cell in one fresh process, alternating blocks (agents/pair.py)."""
    payload = {"pair": [c.to_json() for c in cells], "blocks": blocks, "block_s": block_s}
    return _run_worker(payload, timeout_s, module="agents.pair",
                       threads=cells[0].measure["threads"],
                       memory=memory_limit_mb(cells[0].measure))


# agents.zygote.Zygote per runtime: the prestarted worker its cells fork from, for one
# environment
_zygotes: dict = {}


def close_prestarted_workers() -> None:
    while _zygotes:
        _zygotes.popitem()[1].close()


def _forked(runtime: str, cell_file: Path, out_file: Path, log_file: Path, env: dict):
    """A cell's worker forked from its runtime's prestarted one (agents/zygote.py), started
    on the runtime's first cell with this environment (the variables a runtime reads at
    import must be the cell's); None where there is none for this runtime or it cannot
    start: the caller starts a plain worker."""
    from agents.zygote import PRELOAD, Zygote, ZygoteError

    if runtime not in PRELOAD:
        return None
    server_env = {k: v for k, v in env.items() if k != "HARNESS_PARENT_PID"}
    zygote = _zygotes.get(runtime)
    if zygote is not None and (zygote.env != server_env or not zygote.alive):
        _zygotes.pop(runtime).close()
        zygote = None
    try:
        if zygote is None:
            zygote = _zygotes[runtime] = Zygote(server_env, runtime)
        return zygote.start(str(cell_file), str(out_file), str(log_file), server_env)
    except ZygoteError:
        _zygotes.pop(runtime, None)
        return None


def _run_worker(payload: dict, timeout_s: float, *, threads: int, memory: tuple[float, str],
                module: str = "agents.worker") -> dict:
    with tempfile.TemporaryDirectory(prefix="harness-cell-") as tmp:
        folder = Path(tmp)
        cell_file, out_file, log_file = folder / "cell.json", folder / "result.json", folder / "log"
        cell_file.write_text(json.dumps(payload))
        started = time.time()
        with open(log_file, "wb") as log:
            env = _env(threads)
            proc = None
            if module == "agents.worker":
                proc = _forked(payload.get("runtime"), cell_file, out_file, log_file, env)
            if proc is None:
                proc = subprocess.Popen(
                    [sys.executable, "-m", module, str(cell_file), "--out", str(out_file)],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True, env=env)
            limit, limit_source = memory
            code, killed, peak = _watch(proc, timeout_s, limit)
            if killed == "timeout":
                return {"status": "timeout", "wall_s": time.time() - started,
                        "error": f"no result after {timeout_s:.0f} s; killed. Log tail:\n"
                                 f"{_tail(log_file)}"}
            if killed == "memory":
                return {"status": "failed", "wall_s": time.time() - started,
                        "error": f"exceeded the memory limit of {limit:.0f} MB ({limit_source}; "
                                 f"RSS reached {peak:.0f} MB); killed. Log tail:\n"
                                 f"{_tail(log_file)}"}
        wall = time.time() - started
        if out_file.is_file():
            result = json.loads(out_file.read_text())
            result["wall_s"] = wall
            result["phases"] = with_launcher_view(result.get("phases"), started, wall)
            result["peak_rss_sampled_mb"] = peak or None
            if result.get("status") != "ok" and _tail(log_file):
                result["error"] = f"{result.get('error')}\nLog tail:\n{_tail(log_file)}"
            return result
        if code < 0:
            reason = f"worker killed by {signal.Signals(-code).name}"
        else:
            reason = f"worker exited with code {code} and no result"
        return {"status": "failed", "wall_s": wall,
                "error": f"{reason}. Log tail:\n{_tail(log_file)}"}

"""Measure one cell in this (fresh) process: JSON in, JSON out.

    python -m agents.worker cell.json --out result.json

No Ray and no DuckDB: the coordinator, a Ray task or a person on a bare device can run it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np

from agents.artifacts import artifact_complete, artifact_digest, artifact_size

LATENCY_INCLUDES = "host end-to-end: numpy input to numpy output, one synchronous call"


def _verified(entry: dict, what: str) -> str:
    path = entry["path"]
    companions = entry.get("companions", ())
    if not artifact_complete(path, companions):
        raise FileNotFoundError(f"{what} not found (or incomplete): {path}")
    digest = artifact_digest(path, companions)
    if digest != entry["sha256"]:
        raise ValueError(f"{what} {path} does not match its hash "
                         f"(expected {entry['sha256'][:12]}, got {digest[:12]}): refusing to load")
    return path


def _input_batch(x: np.ndarray, batch_size: int) -> np.ndarray:
    reps = -(-batch_size // len(x))
    return np.ascontiguousarray(np.concatenate([x] * reps)[:batch_size])


def _check_output(output: np.ndarray, reference: np.ndarray | None, runtime: str) -> None:
    """A runtime that returns nothing, or the wrong shape, must fail the cell before
    anything is timed: an empty output is fast and would read as a speedup (seen with
    OpenVINO's weight-compressed matmuls under a restricted ISA). Without a reference
    (a NAS candidate's inputs) the output must still hold one sample."""
    output = np.asarray(output)
    if reference is None:
        if output.ndim == 0 or output.shape[0] != 1 or output.size == 0:
            raise RuntimeError(f"{runtime} returned an output of shape {list(output.shape)} "
                               f"for one sample")
        return
    want = (1, *reference.shape[1:])
    if output.shape != want:
        raise RuntimeError(f"{runtime} returned an output of shape {list(output.shape)} for "
                           f"one sample; the fp32 source gives {list(want)}")


SATURATING_RUNTIMES = ("onnxruntime", "openvino", "torch")


def _saturation_warning(cell: dict, precision: str) -> str | None:
    """int8 figures from an x86 CPU without VNNI, for full-range int8 weights, in a runtime
    whose u8 x s8 kernels add pairs of products in 16 bits: they may have saturated."""
    from agents.devices import int8_saturates

    if (precision == "int8" and cell.get("int8_full_range")
            and cell["runtime"] in SATURATING_RUNTIMES and int8_saturates()):
        return ("int8 may saturate: this CPU has no VNNI and the variant's int8 weights use "
                "the full range (built with reduce_range false); quality figures may be off")
    return None


def _normal_priority() -> int:
    """Measure at normal priority even when started by a niced parent (Ray workers run at
    nice 15 by default). Returns the niceness actually in effect, which is recorded."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except (PermissionError, OSError):
        pass  # not allowed to raise priority: the recorded niceness says so
    return os.getpriority(os.PRIO_PROCESS, 0)


PARENT_ENV = "HARNESS_PARENT_PID"
PARENT_CHECK_S = 1.0


def _exit_with_parent() -> None:
    """The launcher runs the worker in its own session (so a timeout kills the whole group);
    if the launcher dies (its Ray node was killed), the worker must not outlive it."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not parent.isdigit():
        return

    def watch():
        while True:
            if os.getppid() != int(parent):
                os._exit(70)
            time.sleep(PARENT_CHECK_S)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _energy_counter(device: str):
    if device == "nvidia-gpu":
        from agents.probes.gpu import find_gpu_energy_counter
        return find_gpu_energy_counter()
    if device == "arm-edge":
        from agents.probes.energy import find_board_energy_counter
        return find_board_energy_counter()
    from agents.probes.energy import find_cpu_energy_counter
    return find_cpu_energy_counter()


def measure_cell(cell: dict) -> dict:
    from agents.devices import fingerprint
    from agents.probes.accuracy import evaluate
    from agents.faults import inject
    from agents.probes.energy import energy_summary, idle_power_mw
    from agents.probes.latency import time_calls
    from agents.probes.memory import RssSampler
    from agents.probes.stats import summarize
    from agents.runtimes import runtime_module

    measure = cell["measure"]
    artifact = _verified(cell["artifact"], "artifact")
    pack = np.load(_verified(cell["eval_pack"], "eval pack"))
    test_x = pack["test_x"]
    labels = pack["test_y"] if "test_y" in pack.files else None
    counter, energy_reason = _energy_counter(cell["device"])

    result: dict = {"device": fingerprint(cell["device"]), "measurements": [],
                    "niceness": _normal_priority(),
                    "artifact_size_bytes": artifact_size(artifact,
                                                         cell["artifact"].get("companions", ()))}
    runtime = runtime_module(cell["runtime"])
    inject(cell["cell_id"])  # test hook: a no-op unless HARNESS_INJECT_FAULT names this cell
    options = {"options": cell["runtime_options"]} if cell.get("runtime_options") else {}
    with RssSampler() as memory:
        started = time.perf_counter()
        session = runtime.open_session(artifact, threads=measure["threads"],
                                       device=cell["device"], precision=cell["precision"],
                                       **options)
        # first call: lazy init belongs to load time
        _check_output(session.run(_input_batch(test_x, 1)),
                      pack["reference"] if "reference" in pack.files else None, cell["runtime"])
        result["load_ms"] = (time.perf_counter() - started) * 1000.0
        result["runtime"] = session.info
        result["rss_before_load_mb"] = memory.baseline_mb
        accuracy = evaluate(session.run, test_x, labels, pack["reference"]) if measure[
            "accuracy"] else {}
        # A session may time its device's work itself (a GPU session synchronises the
        # device); otherwise a call is one host end-to-end run.
        includes = getattr(session, "latency_includes", LATENCY_INCLUDES)
        for batch_size in measure["batch_sizes"]:
            batch = _input_batch(test_x, batch_size)
            call = (session.timed_call(batch) if hasattr(session, "timed_call")
                    else lambda: session.run(batch))
            if hasattr(session, "reset_device_peak"):
                session.reset_device_peak()
            # the idle baseline just before the loop, on the same counter
            idle_mw, idle_s = idle_power_mw(counter) if counter else (None, None)
            energy_start = counter.read_uj() if counter else None
            t0 = time.perf_counter()
            run = time_calls(call, warmup_s=measure["warmup_s"],
                             min_iterations=measure["min_iterations"],
                             min_seconds=measure["min_seconds"],
                             max_seconds=measure["max_seconds"],
                             ci_rel_width=measure["ci_rel_width"],
                             runtime_clock=getattr(session, "runtime_clock", None))
            window = time.perf_counter() - t0
            row = summarize(run.samples_ms, batch_size) | accuracy
            if run.host_samples_ms is not None:
                row["host_latency_p50_ms"] = float(np.median(run.host_samples_ms))
            # flagged, not hidden: a user sees the number and that it is not trustworthy
            row["latency_noisy"] = bool(row["latency_cv"] is not None
                                        and row["latency_cv"] > measure.get("noisy_cv", 0.1))
            row.update(batch_size=batch_size, threads=measure["threads"],
                       precision=session.precision, stop_reason=run.stop_reason,
                       warmup_calls=run.warmup_calls, latency_includes=includes,
                       peak_rss_mb=memory.peak_mb(),
                       rss_before_load_mb=memory.baseline_mb, niceness=result["niceness"],
                       samples_ms=run.samples_ms.tolist(),
                       load_ms=result["load_ms"])
            if hasattr(session, "device_memory"):
                row |= session.device_memory()
            warning = _saturation_warning(cell, session.precision)
            if warning:
                row["warnings"] = warning
            if counter:
                # The window includes warm-up calls; count them so the per-inference figure
                # divides by every inference the energy paid for.
                calls = (run.warmup_calls + len(run.samples_ms)) * batch_size
                row |= energy_summary(counter, energy_start, counter.read_uj(), window, calls,
                                      idle_mw=idle_mw, idle_window_s=idle_s)
            else:
                row |= {"energy_sensor": None, "energy_note": energy_reason}
            result["measurements"].append(row)
    result["status"] = "ok"
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.worker")
    parser.add_argument("cell", help="cell description (JSON file)")
    parser.add_argument("--out", required=True, help="where to write the result (JSON)")
    args = parser.parse_args(argv)
    return run_and_report(measure_cell, args.cell, args.out)


def run_and_report(measure, payload_path: str, out: str) -> int:
    """A worker process's body: measure the JSON payload and write the result (or the
    failure, with its traceback) atomically to `out`, where the launcher reads it."""
    _exit_with_parent()
    try:
        result = measure(json.loads(Path(payload_path).read_text()))
        code = 0
    except Exception as exc:  # noqa: BLE001 - the cell fails, the process reports it
        result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc()[-4000:]}
        code = 1
    tmp = Path(out + ".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(out)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""Measure one cell in this (fresh) process: a CellPayload (agents/cell.py) in, a CellResult
out, both JSON.

    python -m agents.worker cell.json --out result.json

No Ray and no DuckDB: the coordinator, a Ray task or a person on a bare device can run it.
For each shape of the eval pack (the values of the named axes measure.shapes sweeps), the
worker measures quality sample by sample, then times every batch size.
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
from agents.cell import CellPayload, CellResult, FileRef
from agents.phases import MAIN_STARTED_KEY, PhaseClock

PARENT_ENV = "HARNESS_PARENT_PID"
PARENT_CHECK_S = 1.0
SATURATING_RUNTIMES = ("onnxruntime", "openvino", "torch")


def verified(ref: FileRef, what: str) -> str:
    if not artifact_complete(ref.path, ref.companions):
        raise FileNotFoundError(f"{what} not found (or incomplete): {ref.path}")
    digest = artifact_digest(ref.path, ref.companions)
    if digest != ref.sha256:
        raise ValueError(f"{what} {ref.path} does not match its hash "
                         f"(expected {ref.sha256[:12]}, got {digest[:12]}): refusing to load")
    return ref.path


def check_outputs(outputs: list, pack, runtime: str) -> None:
    """A runtime that returns nothing, too few outputs or the wrong shape must fail the
    cell before anything is timed: an empty output is fast and would read as a speedup
    (seen with OpenVINO's weight-compressed matmuls under a restricted ISA)."""
    references = pack.reference(0)
    if not references:  # a pack without reference outputs (latency only)
        if not outputs or any(np.asarray(o).size == 0 for o in outputs):
            raise RuntimeError(f"{runtime} returned an empty output for one sample")
        return
    if len(outputs) != len(references):
        raise RuntimeError(f"{runtime} returned {len(outputs)} outputs; the fp32 source has "
                           f"{len(references)}")
    for k, (out, ref) in enumerate(zip(outputs, references)):
        out = np.asarray(out)
        if out.size != ref[0].size or out.size == 0:
            raise RuntimeError(f"{runtime} returned an output {k} of shape {list(out.shape)} "
                               f"for one sample; the fp32 source gives {list(ref[0].shape)}")


def normal_priority() -> int:
    """Measure at normal priority even when started by a niced parent (Ray workers run at
    nice 15 by default). Returns the niceness actually in effect, which is recorded."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except (PermissionError, OSError):
        pass  # not allowed to raise priority: the recorded niceness says so
    return os.getpriority(os.PRIO_PROCESS, 0)


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


def _saturation_warning(cell: CellPayload, precision: str) -> str | None:
    """int8 figures from an x86 CPU without VNNI, for full-range int8 weights, in a runtime
    whose u8 x s8 kernels add pairs of products in 16 bits: they may have saturated."""
    from agents.devices import int8_saturates

    if (precision == "int8" and cell.int8_full_range
            and cell.runtime in SATURATING_RUNTIMES and int8_saturates()):
        return ("int8 may saturate: this CPU has no VNNI and the variant's int8 weights use "
                "the full range (built with reduce_range false); quality figures may be off")
    return None


def open_for(cell: CellPayload, artifact: str):
    from agents.runtimes import runtime_module

    options = {"options": cell.runtime_options} if cell.runtime_options else {}
    return runtime_module(cell.runtime).open_session(
        artifact, threads=cell.measure["threads"], device=cell.device,
        precision=cell.precision, **options)


def measure_cell(cell: CellPayload, clock: PhaseClock | None = None) -> CellResult:
    from agents.devices import fingerprint
    from agents.evalpack import EvalPack
    from agents.faults import inject
    from agents.probes.memory import RssSampler
    from agents.probes.quality import columns, run_samples, task_metrics
    from agents.runtimes import runtime_module

    clock = clock or PhaseClock()
    measure = cell.measure
    with clock("setup"):
        artifact = verified(cell.artifact, "artifact")
        pack = EvalPack(verified(cell.eval_pack, "eval pack"))
        counter, energy_reason = _energy_counter(cell.device)
        result = CellResult(status="ok", device=fingerprint(cell.device),
                            niceness=normal_priority(),
                            artifact_size_bytes=artifact_size(artifact,
                                                              cell.artifact.companions))
        runtime_module(cell.runtime)  # import the runtime before the load clock starts
    inject(cell.cell_id)  # test hook: a no-op unless HARNESS_INJECT_FAULT names this cell
    with RssSampler() as memory:
        with clock("load"):
            started = time.perf_counter()
            session = open_for(cell, artifact)
            # first call: lazy initialisation belongs to load time
            check_outputs(session.run(pack.sample(0, 0)), pack, cell.runtime)
            result.load_ms = (time.perf_counter() - started) * 1000.0
        result.runtime = session.info
        for j in range(len(pack.shapes)):
            quality: dict = {}
            if measure["accuracy"]:
                with clock("quality"):
                    outputs = run_samples(session.run, [pack.sample(j, i)
                                                        for i in range(pack.samples)])
                    quality = task_metrics(pack.task, outputs, pack.reference(j), pack.labels)
            for batch_size in measure["batch_sizes"]:
                with clock("timed"):
                    row = _timed_row(cell, session, pack.batch(j, batch_size), batch_size,
                                     counter, energy_reason, memory)
                row |= columns(quality) | {"metrics": quality, "shape": pack.shape_label(j),
                                           "niceness": result.niceness,
                                           "load_ms": result.load_ms}
                result.measurements.append(row)
        if measure.get("profile"):
            with clock("profile"):
                _profile_rows(session, pack, result.measurements,
                              measure.get("profile_runs", 10), measure["warmup_s"])
        if len(measure.get("scenarios") or ()) > 1:
            with clock("scenarios"):
                _scenario_rows(session, pack, result.measurements, measure)
    return result


def _scenario_rows(session, pack, rows: list[dict], measure: dict) -> None:
    """The offline and server scenarios, after every timed loop and the profile pass (they
    load every core: nothing else of the cell runs beside them)."""
    from agents.probes.scenarios import run_scenarios

    labels = [pack.shape_label(j) for j in range(len(pack.shapes))]
    for row in rows:
        j = labels.index(row["shape"])
        row["scenarios"] = run_scenarios(session, pack.batch(j, row["batch_size"]),
                                         row["batch_size"], measure)


def _profile_rows(session, pack, rows: list[dict], runs: int, warmup_s: float) -> None:
    """The profile pass, after every timed loop of the cell: the runtime's own profiler on
    each (shape, batch) the cell timed, so no latency sample is ever taken under it."""
    from agents.probes.profile import open_profiler, profile_row

    profiler = open_profiler(session)
    labels = [pack.shape_label(j) for j in range(len(pack.shapes))]
    for row in rows:
        j = labels.index(row["shape"])
        row["profile"] = profile_row(profiler, pack.batch(j, row["batch_size"]), runs, warmup_s)


def _timed_row(cell: CellPayload, session, inputs: dict, batch_size: int, counter,
               energy_reason: str | None, memory) -> dict:
    from agents.probes.energy import energy_summary, idle_power_mw
    from agents.probes.latency import time_calls
    from agents.probes.stats import summarize

    measure = cell.measure
    call = session.timed_call(inputs)
    session.reset_device_peak()
    # the idle baseline just before the loop, on the same counter
    idle_mw, idle_s = idle_power_mw(counter) if counter else (None, None)
    energy_start = counter.read_uj() if counter else None
    t0 = time.perf_counter()
    run = time_calls(call, warmup_s=measure["warmup_s"], min_iterations=measure["min_iterations"],
                     min_seconds=measure["min_seconds"], max_seconds=measure["max_seconds"],
                     ci_rel_width=measure["ci_rel_width"], runtime_clock=session.runtime_clock)
    window = time.perf_counter() - t0
    row = summarize(run.samples_ms, batch_size)
    if run.host_samples_ms is not None:
        row["host_latency_p50_ms"] = float(np.median(run.host_samples_ms))
    # flagged, not hidden: a user sees the number and that it is not trustworthy
    row["latency_noisy"] = bool(row["latency_cv"] is not None
                                and row["latency_cv"] > measure.get("noisy_cv", 0.1))
    row.update(batch_size=batch_size, threads=measure["threads"], precision=session.precision,
               stop_reason=run.stop_reason, warmup_calls=run.warmup_calls,
               latency_includes=session.latency_includes, peak_rss_mb=memory.peak_mb(),
               rss_before_load_mb=memory.baseline_mb, samples_ms=run.samples_ms.tolist())
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
    return row


def main(argv: list[str] | None = None) -> int:
    main_started = time.time()
    parser = argparse.ArgumentParser(prog="python -m agents.worker")
    parser.add_argument("cell", help="cell description (JSON file, agents/cell.py)")
    parser.add_argument("--out", required=True, help="where to write the result (JSON)")
    args = parser.parse_args(argv)
    clock = PhaseClock()

    def measure(data: dict) -> dict:
        result = measure_cell(CellPayload.from_json(data), clock)
        result.phases = clock.seconds | {MAIN_STARTED_KEY: main_started}
        return result.to_json()

    return run_and_report(measure, args.cell, args.out)


def run_and_report(measure, payload_path: str, out: str) -> int:
    """A worker process's body: measure the JSON payload and write the result (or the
    failure, with its traceback) atomically to `out`, where the launcher reads it."""
    _exit_with_parent()
    try:
        result = measure(json.loads(Path(payload_path).read_text()))
        code = 0
    except Exception as exc:  # noqa: BLE001 - the cell fails, the process reports it
        result = CellResult.failed(f"{type(exc).__name__}: {exc}",
                                   traceback=traceback.format_exc()[-4000:]).to_json()
        code = 1
    tmp = Path(out + ".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(out)
    return code


def exit_now(code: int) -> None:
    """Leave without the interpreter's teardown: the result is written, and unwinding torch,
    inductor's compile workers and the runtimes' thread pools cost a torch cell about a
    second of wall time per measurement (measured: cells.measure_phases 'other')."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())

"""Sanity of the per-layer profiles, against the cells' own timings and against OpenVINO's
benchmark_app.

Builds (or reuses, from the artifact cache) the digits CNN and a random-init resnet18 as
fp32, dynamic int8 and static int8 in ONNX and OpenVINO, and fp32 and static int8 as torch
programs, then:

1. Sum of layers vs p50. Each variant is measured through the harness worker (fresh
   process, batch 1, N threads) with `measure.profile` on. The sum of its per-layer
   medians is printed beside the cell's p50, as a ratio, per runtime. The layers leave
   out what is not a layer (ORT's session.run bookkeeping and its input / output copies,
   the Python call, OpenVINO's request overhead), and a profiler adds its own cost to
   every op it records. Checked: the ratio is at least the runtime's low bound (LOW), and at
   most 1.1 unless the excess over the p50 is within the profiler's own cost per recorded
   layer (PER_LAYER_US): a few microseconds a node weigh on a 0.3 ms model, not on a 30 ms
   one.

2. OpenVINO vs `benchmark_app -pc`. For each OpenVINO IR, in alternating rounds, the
   harness profile and benchmark_app's detailed per-layer counters on the same IR, input,
   threads and precision:

       benchmark_app -m IR -d CPU -hint none -nthreads N -nstreams 1 -api sync
                     -data_shape NAME[1,...] -inference_only true -infer_precision f32
                     -niter 20 -pc -report_type detailed_counters -report_folder DIR
                     -i NAME:BATCH.npy

   benchmark_app's counters are those of its last inference, so each round takes the
   median of several invocations. Checked: the heavy layers (the largest ones that together
   take half of the harness's profiled run) are executed by both, under the same type and
   primitive, and the time of each (harness / benchmark_app per round, median over rounds)
   is within 10%. Other layers of at least 5% are printed unchecked: some are a few
   microseconds, where a layout reorder that one side runs as a node of its own moves them
   by more than 10%. Layers only one of them ran are listed.

    .venv/bin/python benchmarks/profile_check.py [--threads 1] [--rounds 5] [--runs 20]
                                                 [--no-resnet18] [--json OUT]

Exit status 0 when every check holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.openvino_check import batch_files  # noqa: E402
from benchmarks.variants import build_check_variants, check_models, timing_cell  # noqa: E402

# Sum of per-layer medians / the cell's p50, per runtime: at least the low bound (the layers
# leave out the runtime's call overhead, never most of the run), and at most 1.1 unless the
# excess is the profiler's own cost: at most PER_LAYER_US microseconds per recorded layer
# (each node's timer in ORT, OpenVINO's PERF_COUNT, torch.profiler's event per op), which
# matters on a 0.3 ms model with 30 nodes and vanishes on a 30 ms one.
LOW = {"onnxruntime": 0.70, "openvino": 0.80, "torch": 0.70}
HIGH = 1.10
PER_LAYER_US = {"onnxruntime": 3.0, "openvino": 5.0, "torch": 15.0}
SHOWN_SHARE = 0.05   # layers of at least this share of the run are printed
HEAVY_TIME = 0.50    # the largest layers that together take this share are checked
LAYER_TOLERANCE = 0.10
BENCH_INVOCATIONS = 3  # per round: benchmark_app's counters are one inference's


def torch_variants(cache: Path, resnet18: bool) -> list[tuple[str, dict]]:
    from harness.build.variant import VariantRequest, build_variant
    from harness.matrix.schema import BaselineMethod, QuantizeMethod

    built = []
    for model, shapes in check_models(resnet18):
        for method in (BaselineMethod(name="fp32", kind="baseline"),
                       QuantizeMethod(name="int8", kind="quantize", mode="static")):
            manifest = build_variant(VariantRequest(
                model=model, method=method.name, steps=(method,), format="torch",
                base_dir=str(REPO), cache_dir=str(cache), shapes=shapes))
            built.append((f"{model.name}/{method.name}", manifest))
    return built


def profiled_cell(manifest: dict, threads: int, seconds: float, runs: int) -> dict:
    """The harness's batch-1 row for the variant, with its profile."""
    from agents.launcher import run_cell

    cell_id = f"{manifest['model']}/{manifest['method']}/{manifest['format']}/intel-cpu"
    cell = timing_cell(manifest, cell_id, threads, seconds).with_measure(
        profile=True, profile_runs=runs)
    result = run_cell(cell, timeout_s=seconds * 3 + 300)
    if not result.ok:
        raise RuntimeError(f"harness cell {cell_id}: {result.error}")
    row = result.measurements[0]
    if row["profile"].get("reason"):
        raise RuntimeError(f"{cell_id}: no profile: {row['profile']['reason']}")
    return row


def sum_check(label: str, manifest: dict, row: dict) -> dict:
    runtime, p50 = manifest["runtime"], row["latency_p50_ms"]
    layers = row["profile"]["layers"]
    total = sum(x["time_ms"] for x in layers)
    ratio = total / p50
    excess_us = max(0.0, total - p50) * 1000.0 / len(layers)
    ok = LOW[runtime] <= ratio and (ratio <= HIGH or excess_us <= PER_LAYER_US[runtime])
    return {"variant": label, "runtime": runtime, "p50_ms": p50, "layers_ms": total,
            "profiled_run_ms": row["profile"]["total_ms"], "ratio": ratio,
            "layers": len(layers), "excess_us_per_layer": excess_us, "ok": ok}


def heavy_layers(layers: list[dict]) -> set[str]:
    """The largest layers that together take HEAVY_TIME of the run."""
    chosen, covered = set(), 0.0
    for layer in sorted(layers, key=lambda x: -x["time_ms"]):
        if covered >= HEAVY_TIME:
            break
        chosen.add(layer["layer"])
        covered += layer["share"] or 0.0
    return chosen


def bench_counters(manifest: dict, threads: int, inputs: dict) -> dict[str, dict]:
    """Per executed layer: type, primitive and median real time over a few invocations."""
    tool = Path(sys.executable).with_name("benchmark_app")
    shapes = ",".join(f"{name}[{','.join(str(d) for d in shape)}]"
                      for name, (_, shape) in inputs.items())
    times: dict[str, list[float]] = {}
    kinds: dict[str, tuple[str, str]] = {}
    for _ in range(BENCH_INVOCATIONS):
        with tempfile.TemporaryDirectory() as folder:
            cmd = [str(tool), "-m", manifest["artifact_path"], "-d", "CPU", "-hint", "none",
                   "-nthreads", str(threads), "-nstreams", "1", "-api", "sync",
                   "-data_shape", shapes, "-inference_only", "true", "-infer_precision", "f32",
                   "-ip", "f32",  # else a 3-channel input is taken as a u8 image
                   "-niter", "20", "-pc", "-report_type", "detailed_counters",
                   "-report_folder", folder,
                   "-i", *(f"{name}:{path}" for name, (path, _) in inputs.items())]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            report = Path(folder) / "benchmark_detailed_counters_report.csv"
            if out.returncode != 0 or not report.is_file():
                raise RuntimeError(f"benchmark_app failed ({out.returncode}): {' '.join(cmd)}"
                                   f"\n{(out.stdout + out.stderr)[-2000:]}")
            with report.open() as f:
                for rec in csv.DictReader(f, delimiter=";"):
                    if rec.get("execStatus") == "Status.EXECUTED":
                        name = rec["layerName"]
                        times.setdefault(name, []).append(float(rec["realTime (ms)"]))
                        kinds[name] = (rec["layerType"], rec["execType"])
    return {name: {"op_type": kinds[name][0], "exec_type": kinds[name][1],
                   "ms": statistics.median(values)} for name, values in times.items()}


def layer_check(label: str, manifest: dict, threads: int, seconds: float, runs: int,
                rounds: int) -> dict:
    """Harness vs benchmark_app per layer, rounds alternating which goes first."""
    inputs = batch_files(manifest, Path(tempfile.gettempdir()))
    ratios: dict[str, list[float]] = {}
    heavy: dict[str, dict] = {}
    checked: set[str] = set()
    only: dict[str, set] = {"harness": set(), "benchmark_app": set()}
    mismatched: list[str] = []
    for k in range(rounds):
        if k % 2:
            bench = bench_counters(manifest, threads, inputs)
            row = profiled_cell(manifest, threads, seconds, runs)
        else:
            row = profiled_cell(manifest, threads, seconds, runs)
            bench = bench_counters(manifest, threads, inputs)
        mine = {x["layer"]: x for x in row["profile"]["layers"]}
        checked |= heavy_layers(row["profile"]["layers"])
        only["harness"] |= set(mine) - set(bench)
        only["benchmark_app"] |= set(bench) - set(mine)
        for name, layer in mine.items():
            if (layer["share"] or 0) < SHOWN_SHARE and name not in checked:
                continue
            heavy.setdefault(name, layer)
            if name not in bench:
                ratios.setdefault(name, [])
                continue
            if (bench[name]["op_type"], bench[name]["exec_type"]) != (layer["op_type"],
                                                                      layer["exec_type"]):
                mismatched.append(f"{name}: {layer['op_type']}/{layer['exec_type']} vs "
                                  f"{bench[name]['op_type']}/{bench[name]['exec_type']}")
            if bench[name]["ms"] > 0:
                ratios.setdefault(name, []).append(layer["time_ms"] / bench[name]["ms"])
    rows = []
    for name, layer in heavy.items():
        values = ratios.get(name) or []
        ratio = statistics.median(values) if values else None
        rows.append({"layer": name, "op_type": layer["op_type"], "exec_type": layer["exec_type"],
                     "share": layer["share"], "ratio": ratio, "checked": name in checked,
                     "ok": name not in checked or (ratio is not None
                                                   and abs(ratio - 1) <= LAYER_TOLERANCE)})
    return {"variant": label, "heavy_layers": rows, "mismatched": sorted(set(mismatched)),
            "only_harness": sorted(only["harness"]),
            "only_benchmark_app": sorted(only["benchmark_app"]),
            "ok": bool(checked) and all(r["ok"] for r in rows) and not mismatched}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=1.0, help="timed window per cell")
    parser.add_argument("--runs", type=int, default=20, help="profiled runs per cell")
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternating harness / benchmark_app rounds per OpenVINO IR")
    parser.add_argument("--no-resnet18", action="store_true", help="digits CNN only")
    parser.add_argument("--cache", default=str(REPO / "results" / "cache"))
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args(argv)
    resnet18 = not args.no_resnet18

    variants = [(f"{label}/{fmt}", m) for fmt in ("onnx", "openvino")
                for label, m in build_check_variants(fmt, args.cache, resnet18)]
    variants += [(f"{label}/torch", m) for label, m in torch_variants(Path(args.cache), resnet18)]

    print("\n1. sum of per-layer medians vs the cell's p50 (batch 1, "
          f"{args.threads} thread(s))")
    print(f"{'variant':32} {'runtime':12} {'p50 ms':>9} {'layers ms':>10} {'ratio':>6} "
          f"{'layers':>6} {'excess us/layer':>15}")
    sums = []
    for label, manifest in variants:
        check = sum_check(label, manifest, profiled_cell(manifest, args.threads, args.seconds,
                                                         args.runs))
        sums.append(check)
        print(f"{label:32} {check['runtime']:12} {check['p50_ms']:9.3f} "
              f"{check['layers_ms']:10.3f} {check['ratio']:6.3f} {check['layers']:6d} "
              f"{check['excess_us_per_layer']:15.1f}  "
              f"{'ok' if check['ok'] else 'OUT OF BOUNDS'}", flush=True)

    print(f"\n2. OpenVINO per-layer times vs benchmark_app -pc (layers >= {SHOWN_SHARE:.0%} of "
          f"the run; ratio harness/benchmark_app, median of {args.rounds} rounds; checked "
          f"within {LAYER_TOLERANCE:.0%}, marked *: the largest layers that make up "
          f"{HEAVY_TIME:.0%} of the run)")
    layers = []
    for label, manifest in variants:
        if manifest["runtime"] != "openvino" or "int8-dyn" in label:
            continue
        check = layer_check(label, manifest, args.threads, args.seconds, args.runs,
                            args.rounds)
        layers.append(check)
        print(f"{label}: {'ok' if check['ok'] else 'FAILED'}")
        for r in check["heavy_layers"]:
            ratio = "missing in benchmark_app" if r["ratio"] is None else f"{r['ratio']:.3f}"
            print(f"   {'*' if r['checked'] else ' '} {r['layer'][:44]:44} {r['op_type'][:16]:16} "
                  f"{r['exec_type'][:22]:22} {r['share']:5.0%}  {ratio}")
        for text in check["mismatched"]:
            print(f"   different type / primitive: {text}")
        for who in ("only_harness", "only_benchmark_app"):
            if check[who]:
                print(f"   executed only by {who.removeprefix('only_')}: "
                      + ", ".join(check[who][:6]) + (" ..." if len(check[who]) > 6 else ""))

    if args.json:
        Path(args.json).write_text(json.dumps({"sums": sums, "layers": layers}, indent=1))
    failed = [c["variant"] for c in sums + layers if not c["ok"]]
    print("\n" + ("all within bounds" if not failed else "out of bounds: " + ", ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

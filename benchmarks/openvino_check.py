"""Cross-check the harness's OpenVINO latency against OpenVINO's own benchmark_app.

Builds (or reuses, from the artifact cache) the digits CNN's fp32, int8 (nncf.quantize) and
int8-dyn (nncf.compress_weights) OpenVINO variants, resnet18 (random init, 3x224x224) with
--resnet18, and the tiny BERT classifier edge.yaml measures (two int64 inputs, input_ids
and attention_mask [batch, seq], built and timed at seq 128) with --encoder; then, for a few alternating rounds, measures each through the harness
worker (agents.launcher.run_cell: fresh process, batch 1, N threads) and with benchmark_app
under the same settings:

    benchmark_app -m IR -d CPU -hint none -nthreads N -nstreams 1 -api sync
                  -data_shape NAME[1,...],... -inference_only true -infer_precision f32
                  -t SECONDS -i NAME:BATCH-NAME.npy ...

Both time the same thing: OpenVINO's request timer (InferRequest.latency) around infer() on
an input set once, in an OpenVINO-allocated tensor, holding the same batch (the harness's
first test batch, given to benchmark_app as .npy). The compiled model's properties that
benchmark_app prints are compared with the harness session's, and any difference is
printed beside the verdict.

The harness compiles the IR with its dynamic batch and INFERENCE_PRECISION_HINT f32 (also for
int8 IRs, whose non-quantized layers then run in f32), so benchmark_app gets -data_shape (the
model stays dynamic) and -infer_precision f32; `-shape` (the IR reshaped to the static
shape of the batch) is shown with --static.

This host's speed drifts by 5-10% within a minute and between processes, more than the 3%
being checked, so the check is paired: each round measures the harness and benchmark_app
back to back (alternating which goes first), and the verdict is the median over rounds of
the per-round ratio harness/benchmark_app. Medians of each tool's per-round medians are
printed too.

    .venv/bin/python benchmarks/openvino_check.py [--threads 1] [--seconds 2] [--rounds 10]
                                                  [--resnet18] [--encoder] [--static]
                                                  [--json OUT]

Exit status: 0 when every variant's ratio is within 3%, 1 otherwise. `--mismatch` is a check
of the check: benchmark_app times another variant's IR than the harness does, so it must
exit 1.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.variants import build_check_variants, first_batch, timing_cell  # noqa: E402

TOLERANCE = 0.03
MEDIAN_RE = re.compile(r"Median:\s+([0-9.]+)\s*(ms|us)")
PROPERTY_RE = re.compile(r"^\[ INFO \]\s{3}([A-Z_]+): (.*)$")


def batch_files(manifest: dict, folder: Path) -> dict[str, tuple[Path, list[int]]]:
    """The batch the harness times (the first test sample), one .npy per named input, with
    its shape: benchmark_app's -i and -data_shape."""
    import numpy as np
    files = {}
    for name, array in first_batch(manifest).items():
        path = folder / f"{manifest['variant_id']}-{name}.npy"
        if not path.is_file():
            np.save(path, array)
        files[name] = (path, list(array.shape))
    return files


def printed_properties(stdout: str) -> dict:
    """The compiled model's properties benchmark_app prints (Step 8, under 'Model:')."""
    found, inside = {}, False
    for line in stdout.splitlines():
        if line.strip().endswith("Model:"):
            inside = True
            continue
        if inside:
            match = PROPERTY_RE.match(line)
            if not match:
                break
            found[match.group(1)] = match.group(2).strip()
    return found


def property_differences(bench: dict, harness: dict) -> dict:
    """Properties both report, with different values: what the two do not share."""
    return {k: (harness[k], bench[k]) for k in sorted(set(bench) & set(harness))
            if _normal(harness[k]) != _normal(bench[k])}


def _normal(value) -> str:
    text = str(value)
    for prefix in ("<Type: '", "SchedulingCoreType.", "ExecutionMode.", "TbbPartitioner.",
                   "Level.", "PerformanceMode."):
        text = text.replace(prefix, "")
    return text.strip("'>").lower().replace("float32", "f32")


def harness_p50(manifest: dict, threads: int, seconds: float) -> tuple[float, dict]:
    from agents.launcher import run_cell

    cell = timing_cell(manifest, f"{manifest['model']}/{manifest['method']}/openvino/intel-cpu",
                       threads, seconds)
    result = run_cell(cell, timeout_s=seconds * 3 + 120)
    if not result.ok:
        raise RuntimeError(f"harness cell {cell.cell_id}: {result.error}")
    row = result.measurements[0]
    return row["latency_p50_ms"], {"precision": row["precision"], **result.runtime}


def benchmark_app_median(manifest: dict, threads: int, seconds: float, static: bool,
                         inputs: dict[str, tuple[Path, list[int]]]) -> tuple[float, dict]:
    """benchmark_app's median latency (ms) and the compiled model's properties it printed."""
    tool = Path(sys.executable).with_name("benchmark_app")
    shapes = ",".join(f"{name}[{','.join(str(d) for d in shape)}]"
                      for name, (_, shape) in inputs.items())
    cmd = [str(tool), "-m", manifest["artifact_path"], "-d", "CPU", "-hint", "none",
           "-nthreads", str(threads), "-nstreams", "1", "-api", "sync",
           "-shape" if static else "-data_shape", shapes, "-inference_only", "true",
           "-infer_precision", "f32", "-t", str(seconds),
           "-i", *(f"{name}:{path}" for name, (path, _) in inputs.items())]
    stdout, found = run_benchmark_app(cmd, seconds, MEDIAN_RE)
    value = float(found.group(1))  # below 1 ms benchmark_app prints microseconds
    return (value / 1000.0 if found.group(2) == "us" else value), printed_properties(stdout)


def run_benchmark_app(cmd: list[str], seconds: float, pattern: re.Pattern):
    """Run benchmark_app; its stdout and the match of `pattern` in it, or a RuntimeError
    with the command and the end of its output."""
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 3 + 120)
    found = pattern.search(out.stdout)
    if out.returncode != 0 or not found:
        raise RuntimeError(f"benchmark_app failed ({out.returncode}): {' '.join(cmd)}\n"
                           f"{(out.stdout + out.stderr)[-2000:]}")
    return out.stdout, found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=2,
                        help="per measurement (whole seconds: benchmark_app -t)")
    parser.add_argument("--rounds", type=int, default=10, help="paired, alternating rounds")
    parser.add_argument("--static", action="store_true",
                        help="also benchmark_app with -shape (the IR reshaped to batch 1)")
    parser.add_argument("--resnet18", action="store_true", help="also resnet18 (3x224x224)")
    parser.add_argument("--encoder", action="store_true",
                        help="also the tiny BERT classifier at seq 128 (two int64 inputs)")
    parser.add_argument("--cache", default=str(REPO / "results" / "cache"))
    parser.add_argument("--json", help="also write the raw numbers here")
    parser.add_argument("--mismatch", action="store_true",
                        help="check of the check: benchmark_app times the next variant's IR, "
                             "so the verdict must fail (exit 1)")
    args = parser.parse_args(argv)

    import tempfile
    variants = build_check_variants("openvino", args.cache, args.resnet18, args.encoder)
    inputs_dir = Path(tempfile.mkdtemp(prefix="openvino-check-"))
    # benchmark_app's IR: the harness's own, or with --mismatch the next variant's
    bench_manifest = {name: variants[(i + args.mismatch) % len(variants)][1]
                      for i, (name, _) in enumerate(variants)}
    bench_properties: dict = {}
    seconds = args.seconds
    tools = ["harness", "bench_dynamic"] + (["bench_static"] if args.static else [])
    raw: dict = {name: {tool: [] for tool in tools} for name, _ in variants}
    runtime_info: dict = {}
    for r in range(args.rounds):
        for name, manifest in variants:
            # Alternate which tool goes first, so a drift in the host's speed hits both.
            order = list(tools)
            if r % 2:
                order.reverse()
            for tool in order:
                if tool == "harness":
                    value, runtime_info[name] = harness_p50(manifest, args.threads, seconds)
                else:
                    other = bench_manifest[name]
                    value, bench_properties[name] = benchmark_app_median(
                        other, args.threads, seconds, static=tool == "bench_static",
                        inputs=batch_files(other, inputs_dir))
                raw[name][tool].append(value)
            print(f"round {r + 1}/{args.rounds} {name}: " + ", ".join(
                f"{t} {raw[name][t][-1]:.3f}" for t in raw[name]), flush=True)

    header = (f"{'variant':<22} {'ran in':<6} {'harness p50':>12} {'bench_app':>10} "
              f"{'ratio':>6} {'ratio range':>13} {'within 3%':>9} {'diff ms':>8}"
              + (f" {'bench_app -shape':>17}" if args.static else ""))
    print(f"\nOpenVINO {next(iter(runtime_info.values()))['version']}, batch 1, "
          f"{args.threads} thread(s), {seconds:g} s x {args.rounds} rounds; ms, medians of "
          f"the per-round medians (benchmark_app prints 2 decimals: ms, or us below 1 ms); "
          f"ratio: median of the per-round harness/benchmark_app ratios, and their range\n")
    print(header)
    print("-" * len(header))
    table = []
    for name, _ in variants:
        h = statistics.median(raw[name]["harness"])
        bd = statistics.median(raw[name]["bench_dynamic"])
        ratios = [a / b for a, b in zip(raw[name]["harness"], raw[name]["bench_dynamic"])]
        ratio = statistics.median(ratios)
        ok = abs(ratio - 1) <= TOLERANCE
        row = {"variant": name, "precision": runtime_info[name]["precision"],
               "harness_p50_ms": h, "benchmark_app_median_ms": bd, "ratio": ratio,
               "round_ratios": ratios, "within_3pct": ok, "rounds": raw[name],
               "runtime": runtime_info[name]}
        line = (f"{name:<22} {runtime_info[name]['precision']:<6} {h:>12.3f} {bd:>10.3f} "
                f"{ratio:>6.3f} {min(ratios):>6.3f}-{max(ratios):<6.3f} "
                f"{'yes' if ok else 'NO':>9} {h - bd:>8.3f}")
        if args.static:
            row["benchmark_app_static_median_ms"] = statistics.median(raw[name]["bench_static"])
            line += f" {row['benchmark_app_static_median_ms']:>17.3f}"
        differences = property_differences(bench_properties.get(name, {}),
                                           runtime_info[name].get("compiled_properties", {}))
        row["property_differences"] = differences
        table.append(row)
        print(line)
        for key, (mine, theirs) in differences.items():
            print(f"    {key}: harness {mine}, benchmark_app {theirs}")
    if args.mismatch:
        print("\n--mismatch: benchmark_app timed another variant's IR; the verdict must fail")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))
    failed = [row["variant"] for row in table if not row["within_3pct"]]
    if failed:
        print(f"\nFAIL: {len(failed)} variant(s) outside {TOLERANCE:.0%}: {', '.join(failed)}")
        return 1
    print(f"\nOK: every variant within {TOLERANCE:.0%} of benchmark_app")
    return 0


if __name__ == "__main__":
    sys.exit(main())

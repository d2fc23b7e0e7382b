"""Cross-check the harness's offline throughput against OpenVINO's own benchmark_app.

For the resnet18 fp32 and static int8 OpenVINO IRs (random-init resnet18, built or reused
through the harness's build cache), in alternating rounds on the same IR, input and thread
budget:

    harness:        the worker (agents.launcher.run_cell) with measure.scenarios
                    [single_stream, offline], offline: {threads: N} (the THROUGHPUT hint's
                    streams and its OPTIMAL_NUMBER_OF_INFER_REQUESTS requests)
    benchmark_app:  benchmark_app -m IR -d CPU -api async -hint throughput
                    -data_shape input[1,3,224,224] -infer_precision f32 -t T -i input.npy
                    (on every core; with fewer, -hint none -nthreads N and the streams
                    and requests the harness's THROUGHPUT compile chose: benchmark_app
                    refuses -nthreads beside a hint)

and prints each tool's median inferences per second and the ratio harness/benchmark_app
per variant. Exit 0 when every ratio is within 5%, 1 otherwise.

    python benchmarks/throughput_check.py [--threads N] [--seconds 15] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TOLERANCE = 0.05
THROUGHPUT_RE = re.compile(r"Throughput:\s+([0-9.]+)\s*FPS")


def harness_offline(manifest: dict, threads: int, seconds: float) -> tuple[float, dict]:
    from agents.cell import CellPayload
    from agents.launcher import run_cell
    from harness.matrix.schema import MeasureSpec

    measure = MeasureSpec(batch_sizes=[1], threads=1, warmup_s=0.2, min_iterations=10,
                          min_seconds=0.2, max_seconds=1.0, accuracy=False, timeout_s=600,
                          scenarios=["single_stream", "offline"],
                          offline={"threads": threads, "warmup_s": 2.0,
                                   "min_seconds": seconds, "max_seconds": 2 * seconds,
                                   "ci_rel_width": 0.02}).model_dump()
    cell = CellPayload.from_manifest(f"{manifest['model']}/{manifest['method']}/openvino/"
                                     "intel-cpu", "intel-cpu", manifest, measure)
    result = run_cell(cell, timeout_s=seconds * 4 + 300)
    if not result.ok:
        raise RuntimeError(f"harness cell: {result.error}")
    (offline,) = result.measurements[0]["scenarios"]
    if offline.get("throughput_ips") is None:
        raise RuntimeError(f"harness offline scenario: {offline.get('note')}")
    return offline["throughput_ips"], offline


def benchmark_app_fps(manifest: dict, threads: int, seconds: float,
                      inputs: dict[str, tuple[Path, list[int]]], streams: int,
                      requests: int) -> tuple[float, str]:
    """benchmark_app's throughput. On every core, its own THROUGHPUT hint (it refuses
    -nthreads beside a hint); on fewer, the hint's outcome spelled out on the harness's
    side (-hint none with the streams and requests the harness's THROUGHPUT compile chose)."""
    tool = Path(sys.executable).with_name("benchmark_app")
    shapes = ",".join(f"{name}[{','.join(str(d) for d in shape)}]"
                      for name, (_, shape) in inputs.items())
    budget = (["-hint", "throughput"] if threads == len(os.sched_getaffinity(0)) else
              ["-hint", "none", "-nthreads", str(threads), "-nstreams", str(streams),
               "-nireq", str(requests)])
    cmd = [str(tool), "-m", manifest["artifact_path"], "-d", "CPU", "-api", "async",
           *budget, "-data_shape", shapes, "-ip", "f32",
           "-infer_precision", "f32", "-t", str(int(seconds)),
           "-i", *(f"{name}:{path}" for name, (path, _) in inputs.items())]
    from benchmarks.openvino_check import run_benchmark_app

    stdout, found = run_benchmark_app(cmd, seconds, THROUGHPUT_RE)
    requests = re.search(r"(\d+) infer requests", stdout)
    return float(found.group(1)), (requests.group(0) if requests else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="thread budget for both tools (default: every core)")
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="per measurement (whole seconds: benchmark_app -t)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cache", default=str(REPO / "results" / "cache"))
    args = parser.parse_args(argv)

    from benchmarks.openvino_check import batch_files
    from benchmarks.variants import build_check_variants

    built = [(name, m) for name, m in build_check_variants("openvino", args.cache,
                                                            resnet18=True)
             if name in ("resnet18/fp32", "resnet18/int8")]
    folder = Path(args.cache) / "throughput-check"
    folder.mkdir(parents=True, exist_ok=True)
    failures = 0
    print(f"\nthread budget {args.threads}, {args.seconds:g} s per measurement, "
          f"{args.rounds} rounds alternating")
    print(f"{'variant':<16}{'harness ips':>13}{'bench_app ips':>15}{'ratio':>8}  "
          f"harness concurrency")
    for name, manifest in built:
        inputs = batch_files(manifest, folder)
        ours, theirs, how = [], [], ""
        for _ in range(args.rounds):
            ips, offline = harness_offline(manifest, args.threads, args.seconds)
            ours.append(ips)
            how = (f"{offline['concurrency']} requests ({offline['concurrency_source']}), "
                   f"{offline['details'].get('streams')} streams")
            fps, _ = benchmark_app_fps(manifest, args.threads, args.seconds, inputs,
                                       offline["details"]["streams"], offline["concurrency"])
            theirs.append(fps)
        ratio = statistics.median(ours) / statistics.median(theirs)
        ok = abs(ratio - 1.0) <= TOLERANCE
        failures += not ok
        print(f"{name:<16}{statistics.median(ours):>13.1f}{statistics.median(theirs):>15.1f}"
              f"{ratio:>8.3f}  {how}  {'ok' if ok else 'OUTSIDE 5%'}")
        print(f"{'':<16}rounds: harness {', '.join(f'{v:.1f}' for v in ours)}; "
              f"benchmark_app {', '.join(f'{v:.1f}' for v in theirs)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Repeatability: the same cell measured twice in one run, as a sweep measures it.

For each variant (the digits CNN in ONNX fp32 and static int8; with --resnet18 also
torchvision resnet18, weights=None), the harness's worker measures the cell twice in fresh
processes back to back (`agents.launcher.run_cell`, the stopping rule of the matrix's
measure block: CI of the median, min/max duration), each measurement in `--processes` fresh
worker processes pooled as a sweep with `measure.processes` pools them (default 3; 1 is the
single-process measurement). Printed per variant and pair: both p50s, their ratio, whether
each run's stored 95% CI of the median covers the other run's p50, the CI's relative width,
the iterations and why each run stopped, and the CV (a noisy flag above 0.1).

    .venv/bin/python benchmarks/repeatability.py [--threads 1] [--max-seconds 10]
                                                 [--processes 3] [--pairs 2] [--resnet18]

Target (issue 6): ratio within 3% on a quiet machine, and the CIs cover both p50s. On a
shared VM the script reports what it sees; it asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.variants import build_check_variants  # noqa: E402

TOLERANCE = 0.03


def rule_cell(manifest: dict, cell_id: str, threads: int, max_seconds: float,
              processes: int = 1):
    """A worker cell with the sweep's stopping rule (not a fixed window)."""
    from agents.cell import CellPayload

    return CellPayload.from_manifest(cell_id, "intel-cpu", manifest, {
        "batch_sizes": [1], "threads": threads, "warmup_s": 1.0, "min_iterations": 50,
        "min_seconds": 2.0, "max_seconds": max_seconds, "ci_rel_width": 0.02,
        "accuracy": False, "timeout_s": 600, "processes": processes})


def main() -> int:
    from agents.launcher import run_cell

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=10.0)
    parser.add_argument("--processes", type=int, default=3,
                        help="worker processes per measurement (measure.processes)")
    parser.add_argument("--pairs", type=int, default=2, help="measurement pairs per variant")
    parser.add_argument("--resnet18", action="store_true")
    parser.add_argument("--cache", default=str(REPO / "results" / "cache"))
    args = parser.parse_args()

    variants = [(name, m) for name, m in build_check_variants("onnx", args.cache, args.resnet18)
                if not name.endswith("int8-dyn")]
    print(f"\n{args.processes} process(es) per measurement, {args.threads} thread(s)")
    print(f"\n{'variant':<22} {'p50 #1':>9} {'p50 #2':>9} {'ratio':>6} {'CIs cover':>9} "
          f"{'CI width':>13} {'iters':>11} {'stop':>23} {'CV':>11}")
    worst = 0.0
    covered = total = 0
    for name, manifest in variants:
        for _ in range(args.pairs):
            runs = []
            for attempt in (1, 2):
                result = run_cell(rule_cell(manifest, f"{name}#{attempt}", args.threads,
                                            args.max_seconds, args.processes), 600)
                if not result.ok:
                    print(f"{name}: run {attempt} {result.status}: {result.error}")
                    return 1
                runs.append(result.measurements[0])
            a, b = runs
            ratio = b["latency_p50_ms"] / a["latency_p50_ms"]
            worst = max(worst, abs(ratio - 1))
            covers = (a["latency_p50_ci_low_ms"] <= b["latency_p50_ms"]
                      <= a["latency_p50_ci_high_ms"]
                      and b["latency_p50_ci_low_ms"] <= a["latency_p50_ms"]
                      <= b["latency_p50_ci_high_ms"])
            covered += covers
            total += 1
            width = "/".join(f"{(r['latency_p50_ci_high_ms'] - r['latency_p50_ci_low_ms']) / r['latency_p50_ms']:.1%}"
                             for r in runs)
            print(f"{name:<22} {a['latency_p50_ms']:>9.3f} {b['latency_p50_ms']:>9.3f} "
                  f"{ratio:>6.3f} {str(covers):>9} {width:>13} "
                  f"{a['iterations']:>5}/{b['iterations']:<5} "
                  f"{a['stop_reason'] + '/' + b['stop_reason']:>23} "
                  f"{a['latency_cv']:.3f}/{b['latency_cv']:.3f}", flush=True)
    print(f"\nCIs covered both p50s in {covered} of {total} pairs")
    print(f"\nlargest |ratio - 1|: {worst:.3f} (target within {TOLERANCE:.0%} on a quiet machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How close is the harness's p50 to a bare ONNX Runtime loop on the same file?

Builds (or reuses) the digits CNN ONNX variant, measures it through the harness's worker in
a fresh process (the same path a sweep takes), then times a bare `session.run` loop with the
same session options, thread count and input, alternating the two several times so drift
on a shared machine hits both. Prints each pair and the ratio of medians.

    .venv/bin/python benchmarks/fidelity.py [--threads 1] [--rounds 3] [--seconds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def bare_ort_p50(artifact: str, batch: np.ndarray, threads: int, seconds: float) -> float:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    if threads > 1:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(artifact, sess_options=opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    feed = {name: batch}
    end = time.perf_counter() + 1.0
    while time.perf_counter() < end:  # warm-up
        sess.run(None, feed)
    samples = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        sess.run(None, feed)
        samples.append((time.perf_counter() - t0) * 1000)
    return float(np.median(samples))


def main() -> int:
    from agents.launcher import run_cell
    from harness.build.variant import VariantRequest, build_variant
    from benchmarks.variants import first_batch, timing_cell
    from harness.matrix.schema import BaselineMethod, ModelSpec

    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--cache", default=str(REPO / "results" / "cache"))
    args = parser.parse_args()

    model = ModelSpec(name="digits-cnn", source="builtin:digits_cnn", dataset="digits")
    manifest = build_variant(VariantRequest(model, "fp32", (BaselineMethod(name="fp32",
                             kind="baseline"),), "onnx", str(REPO), args.cache))
    (batch,) = first_batch(manifest).values()
    cell = timing_cell(manifest, "fidelity", args.threads, args.seconds)
    print(f"artifact: {manifest['artifact_path']}  threads={args.threads}  batch=1")
    print(f"{'round':>5} {'harness p50 ms':>15} {'bare loop p50 ms':>17} {'ratio':>7}")
    ratios = []
    for i in range(args.rounds):
        result = run_cell(cell, timeout_s=300)
        if not result.ok:
            print(result.error)
            return 1
        harness_p50 = result.measurements[0]["latency_p50_ms"]
        bare = bare_ort_p50(manifest["artifact_path"], batch, args.threads, args.seconds)
        ratios.append(harness_p50 / bare)
        print(f"{i + 1:>5} {harness_p50:>15.4f} {bare:>17.4f} {ratios[-1]:>7.3f}")
    ratio = statistics.median(ratios)
    print(f"median ratio harness/bare = {ratio:.3f} "
          f"({'within' if abs(ratio - 1) <= 0.05 else 'OUTSIDE'} 5%)")
    return 0 if abs(ratio - 1) <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())

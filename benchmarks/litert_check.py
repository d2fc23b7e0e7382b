"""How close is the harness's LiteRT p50 to a bare Interpreter loop on the same file?

Builds (or reuses) the digits CNN TFLite variants (fp32, dynamic-range int8, full int8;
with --resnet18 also torchvision resnet18, weights=None, 3x224x224), then for each variant
alternates, for a few rounds: the harness's worker in a fresh process (the path a sweep
takes: `agents.launcher.run_cell`, batch 1) and a bare loop in another fresh process on the
same file with the same `num_threads` and the same input (`Interpreter(model_path,
num_threads)`, XNNPACK default, warm-up, then timed `set_tensor; invoke; get_tensor`, which
is what the harness's "host end-to-end" sample covers; `invoke()` alone is reported too).

    .venv/bin/python benchmarks/litert_check.py [--threads 1] [--rounds 3] [--seconds 3]
                                                [--resnet18]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.variants import build_check_variants, timing_cell  # noqa: E402
TOLERANCE = 0.03


def bare_loop(artifact: str, pack: str, threads: int, seconds: float) -> dict:
    """Runs in its own process: no torch, no harness code on the timed path."""
    from ai_edge_litert.interpreter import Interpreter

    from agents.evalpack import EvalPack
    (x,) = EvalPack(pack).batch(0, 1).values()
    interpreter = Interpreter(model_path=artifact, num_threads=threads)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]["index"]
    if list(inp["shape"]) != list(x.shape):
        interpreter.resize_tensor_input(inp["index"], list(x.shape), strict=True)
    interpreter.allocate_tensors()
    if np.dtype(inp["dtype"]) != np.float32:  # int8 I/O: quantize once, outside the loop
        scale, zero_point = inp["quantization"]
        info = np.iinfo(inp["dtype"])
        x = np.clip(np.rint(x / scale) + zero_point, info.min, info.max).astype(inp["dtype"])
    set_tensor, invoke, get_tensor = (interpreter.set_tensor, interpreter.invoke,
                                      interpreter.get_tensor)
    index = inp["index"]
    clock = time.perf_counter
    end = clock() + 1.0
    while clock() < end:  # warm-up, as the harness's warmup_s
        set_tensor(index, x)
        invoke()
        get_tensor(out)
    e2e, inv = [], []
    end = clock() + seconds
    while True:
        t0 = clock()
        set_tensor(index, x)
        t1 = clock()
        invoke()
        t2 = clock()
        get_tensor(out)
        t3 = clock()
        e2e.append(t3 - t0)
        inv.append(t2 - t1)
        if t3 >= end:
            break
    return {"p50_ms": float(np.median(e2e)) * 1e3, "invoke_p50_ms": float(np.median(inv)) * 1e3,
            "iterations": len(e2e)}


def _bare_in_subprocess(artifact: str, pack: str, threads: int, seconds: float) -> dict:
    from agents.launcher import _env

    out = subprocess.run([sys.executable, __file__, "--bare", artifact, pack, "--threads",
                          str(threads), "--seconds", str(seconds)], capture_output=True,
                         text=True, env=_env(threads), cwd=REPO, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--resnet18", action="store_true")
    parser.add_argument("--cache", default=str(REPO / "results" / "cache"))
    parser.add_argument("--bare", nargs=2, metavar=("ARTIFACT", "PACK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        print(json.dumps(bare_loop(*args.bare, args.threads, args.seconds)))
        return 0

    from agents.launcher import run_cell

    rows = []
    for name, manifest in build_check_variants("tflite", args.cache, args.resnet18):
        pack = manifest["eval_pack"]
        cell = timing_cell(manifest, f"{name}/tflite/intel-cpu", args.threads, args.seconds)
        harness, bare, invoke, ratios = [], [], [], []
        for _ in range(args.rounds):
            result = run_cell(cell, timeout_s=600)
            if not result.ok:
                print(f"{name}: {result.error}")
                return 1
            harness.append(result.measurements[0]["latency_p50_ms"])
            b = _bare_in_subprocess(manifest["artifact_path"], pack["path"], args.threads,
                                    args.seconds)
            bare.append(b["p50_ms"])
            invoke.append(b["invoke_p50_ms"])
            ratios.append(harness[-1] / bare[-1])
            print(f"  {name}: harness {harness[-1]:.4f} ms, bare {bare[-1]:.4f} ms "
                  f"(invoke {invoke[-1]:.4f}), ratio {ratios[-1]:.3f}", flush=True)
        rows.append((name, manifest["size_bytes"], statistics.median(harness),
                     statistics.median(bare), statistics.median(invoke),
                     statistics.median(ratios)))

    print(f"\nthreads={args.threads} batch=1 rounds={args.rounds} seconds={args.seconds}")
    print(f"{'variant':<20} {'size KB':>9} {'harness p50 ms':>15} {'bare p50 ms':>12} "
          f"{'invoke p50 ms':>14} {'ratio':>6}  within 3%?")
    ok = True
    for name, size, h, b, inv, ratio in rows:
        within = abs(ratio - 1) <= TOLERANCE
        ok &= within
        print(f"{name:<20} {size / 1024:>9.0f} {h:>15.4f} {b:>12.4f} {inv:>14.4f} "
              f"{ratio:>6.3f}  {'yes' if within else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

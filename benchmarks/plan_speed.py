"""How fast `harness plan` answers: a generated 10,000-cell matrix (40 models x 25 methods x
5 formats x 2 devices) planned by the CLI in a fresh interpreter, wall time including
interpreter start-up, and the modules it imported.

    .venv/bin/python benchmarks/plan_speed.py [--runs 5] [--limit 1.0]

Exit status 1 when the median wall time is over the limit (seconds) or torch, Ray,
torchvision, ONNX or OpenVINO got imported."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "torchvision", "ray", "onnx", "onnxruntime", "openvino", "nncf", "duckdb",
         "scipy", "matplotlib", "sklearn")


def matrix_text() -> str:
    models = [f"  - {{name: digits{i}, source: 'builtin:digits_cnn', dataset: digits}}"
              for i in range(20)]
    models += [f"  - {{name: r18-{i}, source: 'torchvision:resnet18', input_shape: [3, 64, 64]}}"
               for i in range(20)]
    methods = ["  - {name: fp32, kind: baseline}", "  - {name: fp16, kind: cast, dtype: fp16}",
               "  - {name: bf16, kind: cast, dtype: bf16}"]
    for calib in ("minmax", "entropy", "percentile"):
        for sym in ("true", "false"):
            for act in ("uint8", "int8"):
                methods.append(f"  - {{name: s-{calib}-{sym}-{act}, kind: quantize, mode: static, "
                               f"calibration: {{method: {calib}}}, "
                               f"scheme: {{symmetric: {sym}, activation_dtype: {act}}}}}")
    methods += ["  - {name: dyn, kind: quantize, mode: dynamic}",
                "  - {name: dyn-asym, kind: quantize, mode: dynamic, scheme: {symmetric: false}}",
                "  - {name: qat, kind: qat, scheme: {symmetric: false}}",
                "  - {name: sparse, kind: prune, structure: unstructured, sparsity: 0.5}",
                "  - {name: slim, kind: prune, structure: channel, sparsity: 0.3}",
                "  - {name: kd, kind: distill, student: {width: 0.5}}",
                "  - {name: slim-int8, chain: [slim, s-minmax-true-uint8]}",
                "  - {name: sparse-int8, chain: [sparse, s-minmax-true-uint8]}",
                "  - {name: kd-int8, chain: [kd, dyn]}",
                "  - {name: fp16-int8, chain: [fp16, dyn]}"]
    assert len(models) == 40 and len(methods) == 25, (len(models), len(methods))
    return ("name: planspeed\nmodels:\n" + "\n".join(models) + "\nmethods:\n"
            + "\n".join(methods) + "\nformats: [torch, onnx, openvino, tflite, tensorrt]\n"
            "devices: [intel-cpu, arm-edge]\n")


PROBE = """
import json, runpy, sys, io, contextlib
sys.argv = ["harness", "plan", sys.argv[1], "--json"]
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        runpy.run_module("harness.cli", run_name="__main__")
    except SystemExit:
        pass
plan = json.loads(out.getvalue())
print(json.dumps({"cells": len(plan["cells"]), "skipped": len(plan["skipped"]),
                  "modules": sorted(sys.modules)}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--limit", type=float, default=1.0, help="seconds (median)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        matrix = Path(tmp) / "planspeed.yaml"
        matrix.write_text(matrix_text())
        # the CLI itself, as a user runs it, for the wall time
        walls = []
        for _ in range(args.runs):
            started = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "harness.cli", "plan", str(matrix),
                                  "--json"], capture_output=True, text=True, cwd=REPO)
            walls.append(time.perf_counter() - started)
            if out.returncode != 0:
                print(out.stderr)
                return 1
        plan = json.loads(out.stdout)
        # the same plan once more, to list what it imported
        probe = subprocess.run([sys.executable, "-c", PROBE, str(matrix)], capture_output=True,
                               text=True, cwd=REPO)
        info = json.loads(probe.stdout)
    total = len(plan["cells"]) + len(plan["skipped"])
    heavy = [m for m in HEAVY if m in info["modules"]]
    median = statistics.median(walls)
    print(f"planned {total} cells ({len(plan['cells'])} to measure, {len(plan['skipped'])} "
          f"skipped) in {median:.3f} s (median of {args.runs}; range "
          f"{min(walls):.3f}-{max(walls):.3f} s), interpreter start-up included")
    print(f"modules imported: {len(info['modules'])}; heavy ones: {heavy or 'none'}")
    ok = median <= args.limit and not heavy and total == 10_000
    print("OK" if ok else f"FAIL: limit {args.limit:.1f} s, no heavy imports, 10000 cells")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

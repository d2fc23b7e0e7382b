"""Digits int8 in ONNX Runtime on a CPU without VNNI: static int8 and QAT built with
`reduce_range: auto` resolved for an AVX2-only agent (7-bit weights), and the same with
full-range weights, each run by ONNX Runtime under qemu's Haswell CPU model (AVX2, no
AVX-512, no VNNI: its U8S8 kernels add pairs of products in 16 bits and saturate), against
the fp32 model's top-1 on the same held-out digits.

    .venv/bin/python benchmarks/no_vnni_check.py [--cache results/cache] [--json OUT]

Needs qemu-x86_64 (Debian's qemu-user). Exit status: 0 when every auto-resolved variant is
within 1 point of fp32 top-1, 1 otherwise (the full-range rows are shown for contrast and
do not gate)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MAX_DROP = 0.01
NO_VNNI = "avx2 avx512f"            # what an AVX2 / AVX-512-without-VNNI agent reports
VNNI = "avx2 avx512f avx512_vnni"
TOP1 = """
import sys, numpy as np, onnxruntime as ort
from agents.evalpack import EvalPack
model, path = sys.argv[1:3]
pack = EvalPack(path)
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
out = session.run(None, pack.batch(0, pack.samples))[0]
print(float(np.mean(out.argmax(1) == pack.labels)))
"""


def build(step, flags: str, cache: str) -> dict:
    from agents import devices
    from harness.build.variant import VariantRequest, build_variant
    from harness.matrix.schema import ModelSpec

    os.environ[devices.CPU_FLAGS_ENV] = flags
    digits = ModelSpec(name="digits-cnn", source="builtin:digits_cnn", dataset="digits")
    return build_variant(VariantRequest(model=digits, method=step.name, steps=(step,),
                                        format="onnx", base_dir=str(REPO), cache_dir=cache))


def haswell_top1(qemu: str, script: Path, variant: dict) -> float:
    out = subprocess.run([qemu, "-cpu", "Haswell", sys.executable, str(script),
                          variant["artifact_path"], variant["eval_pack"]["path"]],
                         capture_output=True, text=True, timeout=1800, cwd=REPO)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default=str(REPO / "results" / "cache"))
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        print("qemu-x86_64 is not installed (Debian: apt-get install qemu-user)")
        return 2
    from harness.matrix.schema import QatMethod, QuantizeMethod, TrainSpec

    steps = [QuantizeMethod(name="int8", kind="quantize", mode="static"),
             QatMethod(name="qat", kind="qat", train=TrainSpec(epochs=1, lr=1e-4),
                       scheme={"symmetric": False, "per_channel": True})]
    script = Path(tempfile.mkdtemp(prefix="no-vnni-")) / "top1.py"
    script.write_text(TOP1)
    rows = []
    print(f"{'variant':<10} {'built for':<22} {'reduce_range':>12} {'fp32 top1':>9} "
          f"{'Haswell top1':>12} {'drop pts':>8}  gates")
    for step in steps:
        for flags, gates in ((NO_VNNI, True), (VNNI, False)):
            variant = build(step, flags, args.cache)
            reduce_range = variant["method_config"][-1]["scheme"]["reduce_range"]
            fp32 = variant["eval_pack"]["reference_top1"]
            top1 = haswell_top1(qemu, script, variant)
            row = {"variant": step.name, "built_for": flags, "reduce_range": reduce_range,
                   "fp32_top1": fp32, "haswell_top1": top1, "drop_pts": 100 * (fp32 - top1),
                   "gates": gates, "ok": (not gates) or top1 >= fp32 - MAX_DROP}
            rows.append(row)
            print(f"{step.name:<10} {flags:<22} {str(reduce_range):>12} {fp32:>9.4f} "
                  f"{top1:>12.4f} {row['drop_pts']:>8.2f}  {'yes' if gates else 'no'}",
                  flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    failed = [f"{r['variant']} ({r['built_for']})" for r in rows if not r["ok"]]
    if failed:
        print(f"\nFAIL: more than {MAX_DROP * 100:.0f} point below fp32: {', '.join(failed)}")
        return 1
    print(f"\nOK: with reduce_range auto, every int8 variant within {MAX_DROP * 100:.0f} point "
          f"of fp32 on a CPU without VNNI")
    return 0


if __name__ == "__main__":
    sys.exit(main())

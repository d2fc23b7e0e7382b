"""Artifacts built on x86, measured by the light agent elsewhere (benchmarks/arm_check.sh).

    python benchmarks/arm_artifacts.py build   --dir D     # full install, x86: a sweep
    python benchmarks/arm_artifacts.py measure --dir D --side x86|arm   # agent install
    python benchmarks/arm_artifacts.py compare --dir D     # exit 1 when outside tolerance

`build` sweeps a small matrix on x86 (the digits CNN fp32 and static int8, a transformers
encoder, a three-input ONNX file; ONNX and TFLite), then writes one folder per built variant
under D/cells/: the artifact, its eval pack and cell.json, with paths relative to that
folder so the same cell reads the same files on any machine. `measure` needs only `agents`
(numpy and the runtimes): per cell it runs `python -m agents.worker` and writes the
session's outputs on the eval pack's inputs (outputs.<side>.npz). `compare` prints, per
artifact, the fingerprint each side's worker detected, quality and fidelity on both sides,
and how far the outputs are apart, against a tolerance per precision."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MATRIX = """name: arm-check
models:
  - {name: digits-cnn, source: "builtin:digits_cnn", dataset: digits}
  - {name: tiny-bert, source: "hf:models/tiny-bert", task: classification}
  - name: speech
    source: "onnx:models/speech_kws.onnx"
    inputs:
      sample_rate: {shape: [], dtype: int64, fill: 16000}
      state: {shape: [2, batch, 64], fill: 0}
methods:
  - {name: fp32, kind: baseline}
  - {name: int8, kind: quantize, mode: static, calibration: {samples: 128, method: minmax},
     scheme: {symmetric: true, per_channel: true}}
formats: [onnx, tflite]
devices: [intel-cpu]
measure: {batch_sizes: [1], shapes: {seq: [32], frames: [50]}, threads: 1, warmup_s: 0.05, min_iterations: 10, min_seconds: 0.1,
          max_seconds: 1.0, timeout_s: 1800, accuracy: true}
"""
SAMPLES = 64            # eval samples whose outputs are compared across machines
WORKER_TIMEOUT_S = 1800  # emulated: hundreds of times slower than native
# Outputs of the same artifact on two CPUs: fp32 kernels differ only in summation order
# (ARM NEON vs x86 AVX-512); int8 kernels may also round requantization differently.
TOLERANCE = {"fp32": {"rel_max_abs": 1e-4, "cosine_min": 0.99999, "top1_agreement": 1.0},
             "int8": {"rel_max_abs": 0.05, "cosine_min": 0.999, "top1_agreement": 0.98}}


def build(folder: Path) -> int:
    sys.path.insert(0, str(REPO))  # the full install's checkout (measure uses the agent's)
    from agents.cell import CellPayload
    from harness.matrix.load import load_matrix

    models = folder / "models"
    subprocess.run([sys.executable, str(REPO / "examples" / "make_models.py"), str(models)],
                   check=True)
    matrix = folder / "matrix.yaml"
    matrix.write_text(MATRIX)
    done = subprocess.run([sys.executable, "-m", "harness.cli", "sweep", str(matrix), "--db",
                           str(folder / "x86.duckdb"), "--cache", str(folder / "cache")],
                          cwd=REPO)
    if done.returncode not in (0, 1):
        return done.returncode
    measure = load_matrix(str(matrix)).matrix.measure.model_dump()
    import duckdb

    with duckdb.connect(str(folder / "x86.duckdb"), read_only=True) as con:
        built = con.execute("""select distinct v.artifact_path, v.eval_pack from variants v
                               join cells c using (variant_id) where c.status = 'ok'""").fetchall()
    cells = folder / "cells"
    for artifact_path, pack_json in sorted(built):
        manifest = json.loads((Path(artifact_path).parent / "manifest.json").read_text())
        manifest["eval_pack"] = json.loads(pack_json)
        name = f"{manifest['model']}-{manifest['method']}-{manifest['format']}"
        out = cells / name
        out.mkdir(parents=True, exist_ok=True)
        artifact = Path(manifest["artifact_path"])
        for companion in [artifact, *(artifact.with_suffix(s)
                                      for s in manifest.get("companions") or [])]:
            shutil.copy2(companion, out / companion.name)
        pack = Path(manifest["eval_pack"]["path"])
        shutil.copy2(pack, out / "pack.npz")
        local = manifest | {"artifact_path": artifact.name,
                            "eval_pack": manifest["eval_pack"] | {"path": "pack.npz"}}
        cell = CellPayload.from_manifest(f"arm-check/{name}", "intel-cpu", local, measure)
        (out / "cell.json").write_text(json.dumps(cell.to_json(), indent=1))
        print(f"cell {name}: {manifest['precision']} {manifest['runtime']} "
              f"{artifact.stat().st_size / 1e6:.2f} MB")
    return 0


def measure(folder: Path, side: str) -> int:
    """Runs with the agent install only: agents and numpy, no harness."""
    from agents.cell import CellPayload
    from agents.evalpack import EvalPack
    from agents.probes.quality import run_samples
    from agents.runtimes import runtime_module

    device = "arm-edge" if side == "arm" else "intel-cpu"
    failures = 0
    for cell_dir in sorted((folder / "cells").iterdir()):
        spec = json.loads((cell_dir / "cell.json").read_text())
        spec |= {"device": device, "cell_id": spec["cell_id"].rsplit("/", 1)[0] + "/" + device}
        cell_file = cell_dir / f"cell.{side}.json"
        cell_file.write_text(json.dumps(spec))
        result_file = cell_dir / f"result.{side}.json"
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "agents.worker", cell_file.name, "--out",
                               result_file.name], cwd=cell_dir, capture_output=True, text=True,
                              timeout=WORKER_TIMEOUT_S)
        status = json.loads(result_file.read_text())["status"] if result_file.is_file() else (
            f"no result (exit {done.returncode}): {done.stderr[-600:]}")
        failures += status != "ok"
        cell = CellPayload.from_json(spec)
        pack = EvalPack(cell_dir / "pack.npz")
        session = runtime_module(cell.runtime).open_session(
            str(cell_dir / cell.artifact.path), threads=1, device=device,
            precision=cell.precision)
        outputs = run_samples(session.run, [pack.sample(0, i)
                                            for i in range(min(SAMPLES, pack.samples))])
        np.savez(cell_dir / f"outputs.{side}.npz",
                 **{f"o{k}": np.stack([sample[k] for sample in outputs])
                    for k in range(len(outputs[0]))})
        print(f"{side} {cell_dir.name}: worker {status}, {len(outputs)} samples' outputs "
              f"({time.monotonic() - started:.0f} s)", flush=True)
    return 1 if failures else 0


def _agreement(a: np.ndarray, b: np.ndarray) -> dict:
    a64, b64 = a.astype(np.float64).reshape(len(a), -1), b.astype(np.float64).reshape(len(b), -1)
    scale = max(float(np.abs(a64).max()), 1e-12)
    norms = np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1)
    cosine = np.where(norms > 0, (a64 * b64).sum(1) / np.maximum(norms, 1e-300), 1.0)
    return {"rel_max_abs": float(np.abs(a64 - b64).max()) / scale,
            "cosine_min": float(cosine.min()),
            "top1_agreement": float((a64.argmax(1) == b64.argmax(1)).mean())}


def compare(folder: Path) -> int:
    failures = 0
    header = (f"{'artifact':<26}{'prec':<6}{'side':<5}{'fingerprint':<58}{'quality':<26}"
              f"{'p50 ms':>10}")
    for cell_dir in sorted((folder / "cells").iterdir()):
        results = {}
        for side in ("x86", "arm"):
            path = cell_dir / f"result.{side}.json"
            results[side] = json.loads(path.read_text()) if path.is_file() else {
                "status": "missing"}
        spec = json.loads((cell_dir / "cell.json").read_text())
        print("\n" + header)
        for side, result in results.items():
            if result["status"] != "ok":
                failures += 1
                print(f"{cell_dir.name:<26}{spec['precision']:<6}{side:<5}"
                      f"{result['status']}: {str(result.get('error'))[:300]}")
                continue
            fp, row = result["device"], result["measurements"][0]
            finger = (f"{fp.get('machine')} {fp['kind']} {fp['cpu_model'][:24]}"
                      + (f" EMULATED ({fp['emulator']})" if fp.get("emulator") else ""))
            metrics = row["metrics"]
            shown = {"top1": ("top1", ".4f"), "top1_agreement": ("agree", ".3f"),
                     "fidelity_cosine_min": ("cos", ".5f")}
            quality = " ".join(f"{label} {metrics[key]:{fmt}}"
                               for key, (label, fmt) in shown.items() if key in metrics)
            timing = f"{row['latency_p50_ms']:>10.3f}" + (" (emulated: meaningless)"
                                                          if fp.get("emulated") else "")
            print(f"{cell_dir.name:<26}{spec['precision']:<6}{side:<5}{finger[:57]:<58}"
                  f"{quality:<26}{timing}")
            runtime = result.get("runtime") or {}
            print(f"{'':<37}runtime {runtime.get('runtime')} {runtime.get('version')}"
                  f", device name {fp.get('name')}")
        if any(r["status"] != "ok" for r in results.values()):
            continue
        if not results["arm"]["device"].get("emulated"):
            failures += 1
            print("  the aarch64 run is not marked emulated")
        x86, arm = (np.load(cell_dir / f"outputs.{side}.npz") for side in ("x86", "arm"))
        bound = TOLERANCE["int8" if spec["precision"] == "int8" else "fp32"]
        for key in x86.files:
            got = _agreement(x86[key], arm[key])
            ok = (got["rel_max_abs"] <= bound["rel_max_abs"]
                  and got["cosine_min"] >= bound["cosine_min"]
                  and got["top1_agreement"] >= bound["top1_agreement"])
            failures += not ok
            print(f"  output {key}, {len(x86[key])} samples, aarch64 vs x86: max |diff| / "
                  f"max |x86| {got['rel_max_abs']:.2e} (<= {bound['rel_max_abs']:g}), cosine "
                  f"min {got['cosine_min']:.6f} (>= {bound['cosine_min']:g}), top-1 "
                  f"agreement {got['top1_agreement']:.3f} (>= {bound['top1_agreement']:g}): "
                  + ("within tolerance" if ok else "OUTSIDE TOLERANCE"))
    print(f"\n{'all artifacts within tolerance' if not failures else f'{failures} problem(s)'}")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=("build", "measure", "compare"))
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--side", choices=("x86", "arm"), default="x86")
    args = parser.parse_args()
    if args.action == "build":
        return build(args.dir)
    if args.action == "measure":
        return measure(args.dir, args.side)
    return compare(args.dir)


if __name__ == "__main__":
    sys.exit(main())

"""The GPU agent on an NVIDIA machine, without Ray or DuckDB: a small CNN exported with the
local torch (torch.export, .pt2), measured by `python -m agents.worker cell.json` in fp32,
fp16, bf16 and fp32 + torch.compile, batch 1 and 32. Prints per cell: p50/p99 (CUDA
synchronised), peak device memory (torch allocator and NVML), energy per inference and mean
power from NVML's total-energy counter, and fidelity to the fp32 CPU reference.

    python benchmarks/gpu_check.py [--out DIR] [--seconds 3]

Exit 0 when every cell is ok and, where NVML reports an energy counter, carries energy;
exit 1 otherwise; exit 3 when this host has no CUDA device (nothing to check)."""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CELL_TIMEOUT_S = 300
VARIANTS = [("fp32", {}), ("fp16", {}), ("bf16", {}), ("fp32", {"compile": True})]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _model():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(128, 10)).eval()


def build(folder: Path) -> tuple[Path, Path]:
    """The artifact and an eval pack whose labels are the fp32 CPU model's own top-1, so
    accuracy reads as agreement with fp32."""
    import torch

    model = _model()
    x = torch.randn(256, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = model(x).numpy()
    program = torch.export.export(model, (x[:2],), dynamic_shapes=(
        {0: torch.export.Dim("batch", min=1, max=4096)},), strict=False)
    artifact = folder / "cnn.pt2"
    torch.export.save(program, str(artifact))
    from agents.cell import BATCH_AXIS, InputSpec
    from agents.evalpack import write_pack

    pack = folder / "pack.npz"
    write_pack(pack, task="classification",
               inputs=[InputSpec("x", "float32", (BATCH_AXIS, 3, 64, 64))], shapes=[{}],
               test_inputs=[{"x": x.numpy()}], references=[[reference]],
               labels=reference.argmax(1), samples=len(x))
    return artifact, pack


def cell(artifact: Path, pack: Path, precision: str, options: dict, seconds: float) -> dict:
    from agents.cell import CellPayload, FileRef

    name = precision + ("-compile" if options.get("compile") else "")
    return CellPayload(
        cell_id=f"gpu-check/{name}/torch/nvidia-gpu", device="nvidia-gpu", runtime="torch",
        precision=precision, runtime_options=options,
        artifact=FileRef(str(artifact), _sha(artifact)), eval_pack=FileRef(str(pack), _sha(pack)),
        measure={"batch_sizes": [1, 32], "threads": 1, "warmup_s": 1.0, "min_iterations": 100,
                 "min_seconds": seconds, "max_seconds": 4 * seconds, "ci_rel_width": 0.02,
                 "accuracy": True}).to_json()


def run_worker(spec: dict, folder: Path) -> dict:
    name = spec["cell_id"].split("/")[1]
    cell_file, out_file = folder / f"{name}.json", folder / f"{name}.result.json"
    cell_file.write_text(json.dumps(spec))
    try:
        done = subprocess.run([sys.executable, "-m", "agents.worker", str(cell_file), "--out",
                               str(out_file)], cwd=REPO, capture_output=True, text=True,
                              timeout=CELL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "error": f"no result after {CELL_TIMEOUT_S} s"}
    if not out_file.is_file():
        return {"status": "failed", "error": f"exit {done.returncode}: {done.stderr[-2000:]}"}
    return json.loads(out_file.read_text())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", help="folder for the cell results (JSON)")
    parser.add_argument("--seconds", type=float, default=3.0, help="min seconds per batch size")
    args = parser.parse_args()

    import torch

    from agents.devices import host_report

    report = host_report()
    print(json.dumps({k: report[k] for k in ("host", "cpu_model", "gpus", "gpu_reason",
                                             "runtimes", "sensors")}, indent=1))
    if not torch.cuda.is_available():
        print(f"no CUDA device: {report['runtimes']['torch-cuda'].get('reason')}")
        return 3
    energy_expected = bool(report["gpus"]) and not report["gpus"][0]["energy_counter"]
    out = Path(args.out or tempfile.mkdtemp(prefix="gpu-check-"))
    out.mkdir(parents=True, exist_ok=True)
    artifact, pack = build(out)
    failures = 0
    header = (f"{'variant':<14}{'batch':>6}{'p50 ms':>10}{'p99 ms':>10}{'iters':>7}"
              f"{'alloc MB':>10}{'nvml MB':>9}{'mJ/inf':>10}{'mean W':>8}{'agree':>7}")
    print(header)
    for precision, options in VARIANTS:
        spec = cell(artifact, pack, precision, options, args.seconds)
        result = run_worker(spec, out)
        name = spec["cell_id"].split("/")[1]
        (out / f"{name}.result.json").write_text(json.dumps(result, indent=1))
        if result.get("status") != "ok":
            failures += 1
            print(f"{name:<14} {result.get('status')}: {str(result.get('error'))[:400]}")
            continue
        for row in result["measurements"]:
            energy = row.get("energy_mj_per_inference")
            if energy_expected and energy is None:
                failures += 1
            print(f"{name:<14}{row['batch_size']:>6}{row['latency_p50_ms']:>10.4f}"
                  f"{row['latency_p99_ms']:>10.4f}{row['iterations']:>7}"
                  f"{row.get('peak_device_mem_mb') or 0:>10.1f}"
                  f"{row.get('device_mem_nvml_mb') or 0:>9.0f}"
                  f"{energy if energy is not None else float('nan'):>10.4f}"
                  f"{(row.get('mean_power_mw') or float('nan')) / 1000:>8.1f}"
                  f"{row.get('fidelity_top1_agreement') or 0:>7.3f}")
        print(f"{'':<14}runtime {result['runtime']}; sensor {result['measurements'][0].get('energy_sensor')}"
              f"; includes: {result['measurements'][0]['latency_includes']}")
    print(f"results in {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

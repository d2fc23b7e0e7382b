#!/usr/bin/env bash
# The GPU agent on an NVIDIA machine (no Ray, no DuckDB needed): detection, then a small
# CNN measured by `python -m agents.worker` in fp32 / fp16 / bf16 / torch.compile with
# CUDA-synchronised timing, allocator + NVML peak memory and NVML energy.
#   benchmarks/gpu_check.sh            (results under $OUT when set, else a temp folder)
# Needs: python with torch (CUDA build), numpy, psutil, nvidia-ml-py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
nvidia-smi --query-gpu=name,driver_version,memory.total,power.draw --format=csv || true
"$PY" - <<'PY'
import importlib
for m in ("torch", "numpy", "psutil", "pynvml"):
    try:
        mod = importlib.import_module(m)
        print(f"{m} {getattr(mod, '__version__', '?')}")
    except ImportError as exc:
        print(f"{m} missing: {exc}")
PY
exec timeout 900 "$PY" benchmarks/gpu_check.py --out "${OUT:-$(mktemp -d)}/gpu-check" "$@"

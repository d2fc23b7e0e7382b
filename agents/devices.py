"""What device kinds this host has, and a fingerprint of each for the results database.

No Ray and no DuckDB here: a device that cannot run Ray can still be measured."""

from __future__ import annotations

import platform
import socket
from functools import lru_cache


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Hardware", "Model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nvidia_gpus() -> tuple[list[dict], str | None]:
    """GPUs through NVML, or the reason there are none."""
    try:
        import pynvml
    except ImportError:
        return [], "nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return [], f"NVML unavailable: {exc}"
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append({"index": i, "name": pynvml.nvmlDeviceGetName(handle),
                         "memory_mb": mem.total // 2**20, "driver": driver})
        return gpus, None if gpus else "NVML found no GPU"
    finally:
        pynvml.nvmlShutdown()


def detect_kinds() -> list[str]:
    kinds = []
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        kinds.append("intel-cpu")
    elif machine in ("aarch64", "arm64"):
        kinds.append("arm-edge")
    if nvidia_gpus()[0]:
        kinds.append("nvidia-gpu")
    return kinds


def fingerprint(kind: str) -> dict:
    """Identity of the device a measurement ran on, as stored in the devices table."""
    host = socket.gethostname()
    info = {"kind": kind, "host": host, "cpu_model": cpu_model(), "gpu_name": None,
            "driver": None, "name": cpu_model()}
    if kind == "nvidia-gpu":
        gpus, _ = nvidia_gpus()
        if gpus:
            info.update(gpu_name=gpus[0]["name"], driver=gpus[0]["driver"], name=gpus[0]["name"])
    return info

"""NVIDIA GPU probes through NVML: the total-energy counter (mJ since the driver loaded,
Volta and newer) and the device memory this process holds. Written against nvidia-ml-py's
real API; on a host without NVML every function returns the reason instead."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class NvmlEnergyCounter:
    """Same interface as agents.probes.energy.RaplCounter (microjoules), so the worker's
    energy arithmetic is shared."""
    name: str
    handle: object

    def read_uj(self) -> int:
        import pynvml
        return int(pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)) * 1000  # mJ

    def delta_uj(self, start: int, end: int) -> int:
        return end - start  # 64-bit millijoule counter: does not wrap in practice


def _handle(index: int):
    import pynvml
    pynvml.nvmlInit()  # reference-counted by NVML; the process exit releases it
    return pynvml.nvmlDeviceGetHandleByIndex(index)


def gpu_index() -> int:
    """The GPU this process uses: the first one CUDA_VISIBLE_DEVICES names, else 0. (A UUID
    there is not resolved; the agent runs one worker per GPU, index 0 in practice.)"""
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
    return int(first) if first.isdigit() else 0


def find_gpu_energy_counter(index: int | None = None) -> tuple[NvmlEnergyCounter | None,
                                                                str | None]:
    try:
        import pynvml
    except ImportError:
        return None, "nvidia-ml-py (pynvml) is not installed"
    index = gpu_index() if index is None else index
    try:
        handle = _handle(index)
        name = pynvml.nvmlDeviceGetName(handle)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except pynvml.NVMLError as exc:
        return None, f"NVML total-energy counter unavailable: {exc}"
    return NvmlEnergyCounter(f"nvml:total_energy:{index}:{name}", handle), None


def process_memory_mb(index: int | None = None) -> float | None:
    """Device memory NVML attributes to this process (CUDA context included), or None."""
    try:
        import pynvml
        handle = _handle(gpu_index() if index is None else index)
        for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == os.getpid() and proc.usedGpuMemory is not None:
                return proc.usedGpuMemory / 2**20
    except Exception:  # noqa: BLE001 - NVML absent, or per-process accounting not allowed
        return None
    return None

"""What device kinds this host has, what they can do, and a fingerprint of each for the
results database.

No Ray and no DuckDB here: a device that cannot run Ray can still be measured. Everything
that is absent comes with the reason it is absent (`harness doctor` prints them)."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import socket
from functools import lru_cache
from pathlib import Path

DEVICE_KINDS = ("intel-cpu", "nvidia-gpu", "arm-edge")
# Set on an agent started with `harness agent start --as KIND`: the kind is advertised
# without the hardware, and every measurement from it is recorded as emulated.
EMULATED_ENV = "HARNESS_EMULATED_KIND"

# ISA features that decide which kernels a runtime can use (int8 dot products, bf16, AMX).
X86_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile",
             "amx_int8", "amx_bf16", "amx_fp16")
ARM_FLAGS = ("asimd", "asimddp", "asimdhp", "i8mm", "bf16", "sve", "sve2")



def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
    except OSError:
        return []


# ARM cores by (implementer, part), as the Linux kernel names them
# (arch/arm64/include/asm/cputype.h): aarch64 /proc/cpuinfo gives only the numbers.
ARM_CORES = {
    ("0x41", "0xd03"): "ARM Cortex-A53", ("0x41", "0xd04"): "ARM Cortex-A35",
    ("0x41", "0xd05"): "ARM Cortex-A55", ("0x41", "0xd07"): "ARM Cortex-A57",
    ("0x41", "0xd08"): "ARM Cortex-A72", ("0x41", "0xd09"): "ARM Cortex-A73",
    ("0x41", "0xd0a"): "ARM Cortex-A75", ("0x41", "0xd0b"): "ARM Cortex-A76",
    ("0x41", "0xd0c"): "ARM Neoverse-N1", ("0x41", "0xd0d"): "ARM Cortex-A77",
    ("0x41", "0xd40"): "ARM Neoverse-V1", ("0x41", "0xd41"): "ARM Cortex-A78",
    ("0x41", "0xd42"): "ARM Cortex-A78AE", ("0x41", "0xd44"): "ARM Cortex-X1",
    ("0x41", "0xd46"): "ARM Cortex-A510", ("0x41", "0xd47"): "ARM Cortex-A710",
    ("0x41", "0xd48"): "ARM Cortex-X2", ("0x41", "0xd49"): "ARM Neoverse-N2",
    ("0x41", "0xd4f"): "ARM Neoverse-V2", ("0x41", "0xd80"): "ARM Cortex-A520",
    ("0x41", "0xd81"): "ARM Cortex-A720", ("0x41", "0xd82"): "ARM Cortex-X4",
    ("0x4e", "0x004"): "NVIDIA Carmel", ("0x61", "0x022"): "Apple M1 Icestorm",
    ("0x61", "0x023"): "Apple M1 Firestorm", ("0xc0", "0xac3"): "Ampere-1",
}


@lru_cache(maxsize=1)
def cpu_model() -> str:
    lines = _cpuinfo()
    for line in lines:
        if line.startswith(("model name", "Hardware", "Model")):
            return line.split(":", 1)[1].strip()
    return arm_cpu_name(lines) or platform.processor() or platform.machine()


def arm_cpu_name(lines: list[str]) -> str | None:
    """The cores of an aarch64 /proc/cpuinfo, named ('4x ARM Cortex-A76'), unknown parts by
    number; None where the file has no ARM core entries."""
    cores, implementer = [], None
    for line in lines:
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "CPU implementer":
            implementer = value.lower()
        elif key == "CPU part" and implementer:
            part = value.lower()
            cores.append(ARM_CORES.get((implementer, part),
                                       f"ARM core implementer {implementer} part {part}"))
    if not cores:
        return None
    counts = {name: cores.count(name) for name in dict.fromkeys(cores)}
    return " + ".join(f"{n}x {name}" for name, n in counts.items())


# Set where an agent runs under an emulator (benchmarks/arm_check.sh sets it for qemu
# user-mode): its value names the emulator, and every measurement is recorded as emulated.
EMULATOR_ENV = "HARNESS_EMULATOR"
BINFMT = Path("/proc/sys/fs/binfmt_misc")


def emulator() -> str | None:
    """The emulator this process runs under, or None. Besides the variable, a binfmt_misc
    handler for this process's own architecture means it was started through one: a host
    never registers an emulator for its native instruction set."""
    named = os.environ.get(EMULATOR_ENV)
    if named:
        return named
    machine = platform.machine().lower()
    try:
        entry = (BINFMT / f"qemu-{machine}").read_text(errors="replace")
    except OSError:
        return None
    if entry.startswith("enabled"):
        return f"qemu-user (binfmt_misc qemu-{machine} is enabled)"
    return None


# Replaces what /proc/cpuinfo says (space- or comma-separated flags): to check how the
# harness decides for a CPU it is not running on. The runtimes still use the real CPU.
CPU_FLAGS_ENV = "HARNESS_CPU_FLAGS"


def cpu_flags() -> list[str]:
    """The ISA features of interest this CPU reports (x86 'flags', aarch64 'Features')."""
    override = os.environ.get(CPU_FLAGS_ENV)
    if override is not None:
        have = set(override.replace(",", " ").split())
        return [f for f in (*X86_FLAGS, *ARM_FLAGS) if f in have]
    for line in _cpuinfo():
        if line.startswith(("flags", "Features")):
            have = set(line.split(":", 1)[1].split())
            wanted = X86_FLAGS if line.startswith("flags") else ARM_FLAGS
            return [f for f in wanted if f in have]
    return []


INT8_DOT_PRODUCT = ("avx512_vnni", "avx_vnni", "amx_int8")


def int8_saturates(flags: list[str] | None = None, machine: str | None = None) -> bool:
    """Whether u8 x s8 int8 kernels can saturate here: x86 CPUs without VNNI multiply-add
    pairs of u8 x s8 products into 16 bits (vpmaddubsw), which overflows for large
    activations and full-range weights (ONNX Runtime's quantization docs; NNCF's
    overflow fix). VNNI (and AMX) accumulate in 32 bits; ARM's int8 kernels widen first."""
    machine = machine or platform.machine()
    if machine.lower() not in ("x86_64", "amd64"):
        return False
    flags = cpu_flags() if flags is None else flags
    return not any(f in flags for f in INT8_DOT_PRODUCT)


def board_model() -> str | None:
    """The board an ARM system runs on (e.g. 'NVIDIA Jetson Orin Nano', 'Raspberry Pi 5'),
    where the device tree tells it."""
    for path in ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model"):
        try:
            return Path(path).read_text(errors="replace").strip("\0\n ") or None
        except OSError:
            continue
    return None


def nvidia_gpus() -> tuple[list[dict], str | None]:
    """GPUs through NVML, or the reason there are none."""
    try:
        import pynvml
    except ImportError:
        return [], "nvidia-ml-py (pynvml) is not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return [], f"NVML unavailable: {exc} (no NVIDIA driver on this host)"
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append({"index": i, "name": pynvml.nvmlDeviceGetName(handle),
                         "memory_mb": mem.total // 2**20, "driver": driver,
                         "energy_counter": _nvml_energy_supported(pynvml, handle)})
        return gpus, None if gpus else "NVML found no GPU"
    finally:
        pynvml.nvmlShutdown()


def _nvml_energy_supported(pynvml, handle) -> str | None:
    """None when the total-energy counter reads, else why not (Volta and newer have it)."""
    try:
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        return None
    except pynvml.NVMLError as exc:
        return f"nvmlDeviceGetTotalEnergyConsumption: {exc}"


def openvino_devices() -> tuple[list[dict], str | None]:
    """OpenVINO's view of this host's Intel devices (CPU, and GPU / NPU where present)."""
    try:
        import openvino as ov
    except ImportError as exc:
        return [], f"openvino does not import: {exc}"
    core = ov.Core()
    devices = []
    for name in core.available_devices:
        try:
            full = core.get_property(name, "FULL_DEVICE_NAME")
        except RuntimeError:
            full = name
        devices.append({"device": name, "name": str(full)})
    return devices, None


def host_kinds() -> list[str]:
    """The device kinds this host's hardware has (no emulation)."""
    kinds = []
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        kinds.append("intel-cpu")
    elif machine in ("aarch64", "arm64"):
        kinds.append("arm-edge")
    if nvidia_gpus()[0]:
        kinds.append("nvidia-gpu")
    return kinds


def detect_kinds() -> list[str]:
    emulated = os.environ.get(EMULATED_ENV)
    return [emulated] if emulated else host_kinds()


def runtime_status(name: str) -> dict:
    """Whether a runtime's package imports here: {'version': ...} or {'reason': ...}."""
    from agents.runtimes import RUNTIMES
    package = RUNTIMES[name][1]
    try:
        module = importlib.import_module(package)
    except Exception as exc:  # noqa: BLE001 - a broken install is a reason, not a crash
        try:
            installed = importlib.metadata.version(package.replace("_", "-"))
            return {"reason": f"{package} {installed} is installed but does not import: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
        except importlib.metadata.PackageNotFoundError:
            return {"reason": f"the {package} package is not installed"}
    version = getattr(module, "__version__", None) or getattr(module, "get_version",
                                                              lambda: None)()
    if version is None:
        try:
            version = importlib.metadata.version(package.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
    return {"version": str(version)}


def torch_cuda_status() -> dict:
    """The torch CUDA runtime's own answer (only the torch runtimes import torch)."""
    try:
        from agents.runtimes.torch_cuda_rt import cuda_status
    except ImportError:
        return {"reason": "torch is not installed"}
    return cuda_status()


def onnxruntime_gpu_status() -> dict:
    """ONNX Runtime's GPU providers (only an onnxruntime-gpu build has them)."""
    try:
        from agents.runtimes.onnxruntime_gpu_rt import gpu_status
    except ImportError:
        return {"reason": "onnxruntime is not installed"}
    return gpu_status()


def runtimes() -> dict[str, dict]:
    from agents.runtimes import RUNTIMES
    found = {name: runtime_status(name) for name in RUNTIMES}
    found["torch-cuda"] = torch_cuda_status()
    found["onnxruntime-gpu"] = onnxruntime_gpu_status()
    return found


def energy_sensors(gpus: list[dict], gpu_reason: str | None) -> dict[str, dict]:
    """Every energy counter the agents could read, or why not."""
    from agents.probes.energy import find_cpu_energy_counter

    counter, reason = find_cpu_energy_counter()
    sensors = {"rapl": {"name": counter.name} if counter else {"reason": reason}}
    if gpus:
        missing = [g["energy_counter"] for g in gpus if g["energy_counter"]]
        sensors["nvml-energy"] = ({"reason": missing[0]} if missing else
                                  {"name": "nvml:total_energy_consumption"})
    else:
        sensors["nvml-energy"] = {"reason": gpu_reason or "no NVIDIA GPU"}
    sensors["hwmon"] = _board_sensor()
    return sensors


def _board_sensor() -> dict:
    """hwmon energy counters or power rails (INA sensors on ARM boards, some servers)."""
    from agents.probes import energy

    finder = getattr(energy, "find_board_energy_counter", None)
    if finder is None:
        return {"reason": "this version has no hwmon probe"}
    counter, reason = finder()
    if counter is None:
        return {"reason": reason}
    if hasattr(counter, "close"):
        counter.close()  # a power rail is sampled by a thread: stop it
    return {"name": counter.name}


def host_report(as_kind: str | None = None) -> dict:
    """Everything `harness doctor` prints and `harness agent start` advertises."""
    gpus, gpu_reason = nvidia_gpus()
    ov_devices, ov_reason = openvino_devices()
    hardware = host_kinds()
    running_under = emulator()
    report = {"host": socket.gethostname(), "machine": platform.machine(),
              "cpu_model": cpu_model(), "cpu_flags": cpu_flags(), "board": board_model(),
              "int8_saturates": int8_saturates(),
              "gpus": gpus, "gpu_reason": gpu_reason,
              "openvino_devices": ov_devices, "openvino_reason": ov_reason,
              "hardware_kinds": hardware, "kinds": [as_kind] if as_kind else hardware,
              "emulated": bool(as_kind and as_kind not in hardware) or bool(running_under),
              "emulator": running_under,
              "runtimes": runtimes(), "sensors": energy_sensors(gpus, gpu_reason)}
    report["missing_kinds"] = {kind: _why_not(kind, report) for kind in DEVICE_KINDS
                               if kind not in hardware}
    return report


def _why_not(kind: str, report: dict) -> str:
    if kind == "nvidia-gpu":
        return report["gpu_reason"] or "no NVIDIA GPU"
    if kind == "arm-edge":
        return f"this CPU is {report['machine']}, not aarch64"
    return f"this CPU is {report['machine']}, not x86-64"


def fingerprint(kind: str) -> dict:
    """Identity of the device a measurement ran on, as stored in the devices table."""
    host = socket.gethostname()
    running_under = emulator()
    emulated = bool(running_under) or (os.environ.get(EMULATED_ENV) == kind
                                       and kind not in host_kinds())
    info = {"kind": kind, "host": host, "cpu_model": cpu_model(), "gpu_name": None,
            "driver": None, "name": board_model() or cpu_model(), "emulated": emulated,
            "cpu_flags": cpu_flags(), "int8_saturates": int8_saturates(),
            "machine": platform.machine()}
    if running_under:
        info["emulator"] = running_under
    if kind == "nvidia-gpu":
        gpus, _ = nvidia_gpus()
        if gpus:
            info.update(gpu_name=gpus[0]["name"], driver=gpus[0]["driver"], name=gpus[0]["name"])
    return info

"""Device detection on this host, and the GPU agent's pieces where a GPU exists (skipped
with the reason elsewhere)."""

import platform

import numpy as np
import pytest

from agents import devices

X86 = platform.machine().lower() in ("x86_64", "amd64")


def test_device_kinds_match_the_matrix_schema():
    from typing import get_args

    from harness.matrix.schema import DeviceKind
    assert get_args(DeviceKind) == devices.DEVICE_KINDS  # one list: the schema reads it


@pytest.mark.skipif(not X86, reason="checks the x86-64 detection path")
def test_an_x86_host_is_an_intel_cpu_agent_with_its_isa_features():
    assert "intel-cpu" in devices.host_kinds()
    flags = devices.cpu_flags()
    assert set(flags) <= set(devices.X86_FLAGS)
    cpuinfo = open("/proc/cpuinfo").read()
    for flag in devices.X86_FLAGS:  # reported exactly when the kernel lists it
        assert (flag in flags) == (f" {flag}" in cpuinfo.split("flags", 1)[1].split("\n")[0])


def test_every_runtime_has_a_version_or_a_reason():
    found = devices.runtimes()
    from agents.runtimes import RUNTIMES
    assert set(RUNTIMES) <= set(found) and "torch-cuda" in found
    for name, entry in found.items():
        assert ("version" in entry) != ("reason" in entry), (name, entry)
    assert "version" in found["onnxruntime"]  # a core dependency


def test_the_report_gives_a_reason_for_each_missing_kind_and_sensor():
    report = devices.host_report()
    for kind in devices.DEVICE_KINDS:
        assert (kind in report["hardware_kinds"]) != (kind in report["missing_kinds"])
    for name, entry in report["sensors"].items():
        assert entry.get("name") or entry.get("reason"), name
    if not report["gpus"]:
        assert report["gpu_reason"] and "nvidia-gpu" in report["missing_kinds"]


def test_an_emulated_kind_is_recorded_as_emulated(monkeypatch):
    foreign = "arm-edge" if X86 else "intel-cpu"
    monkeypatch.setenv(devices.EMULATED_ENV, foreign)
    assert devices.detect_kinds() == [foreign]
    fp = devices.fingerprint(foreign)
    assert fp["kind"] == foreign and fp["emulated"] is True
    monkeypatch.delenv(devices.EMULATED_ENV)
    assert devices.fingerprint(devices.host_kinds()[0])["emulated"] is False


def _no_cuda_reason() -> str | None:
    status = devices.torch_cuda_status()
    return status.get("reason")


@pytest.mark.skipif(_no_cuda_reason() is not None, reason=f"{_no_cuda_reason()}")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_torch_cuda_session_runs_an_exported_model(tmp_path, precision):
    import torch

    from agents.runtimes.torch_cuda_rt import open_session

    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    x = torch.randn(4, 8)
    program = torch.export.export(model, (x,),
                                  dynamic_shapes=({0: torch.export.Dim("b", max=64)},))
    path = tmp_path / "m.pt2"
    torch.export.save(program, str(path))
    session = open_session(str(path), threads=1, device="nvidia-gpu", precision=precision)
    [out] = session.run({"x": x.numpy()})
    tol = 1e-4 if precision == "fp32" else 5e-2
    np.testing.assert_allclose(out, model(x).detach().numpy(), atol=tol, rtol=tol)
    session.reset_device_peak()
    session.timed_call({"x": x.numpy()})()
    memory = session.device_memory()
    assert memory["peak_device_mem_mb"] > 0


@pytest.mark.skipif(_no_cuda_reason() is not None or not devices.nvidia_gpus()[0],
                    reason=f"{_no_cuda_reason() or devices.nvidia_gpus()[1]}")
def test_nvml_energy_counter_advances_by_a_plausible_power_under_load():
    """Two reads around about a second of matrix multiplies: the counter must move, and
    the mean power it implies must be one a GPU draws (a stuck or mis-scaled counter
    fails). NVML updates the counter every ~100 ms or faster."""
    import time

    import torch

    from agents.probes.gpu import find_gpu_energy_counter

    counter, reason = find_gpu_energy_counter()
    if counter is None:
        pytest.skip(reason)
    a = torch.randn(4096, 4096, device="cuda")
    torch.cuda.synchronize()
    first, started = counter.read_uj(), time.perf_counter()
    while time.perf_counter() - started < 1.0:
        a = (a @ a).clamp_(-1, 1)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    joules = counter.delta_uj(first, counter.read_uj()) / 1e6
    assert joules > 0
    assert 5.0 <= joules / seconds <= 2000.0, f"{joules / seconds:.1f} W"

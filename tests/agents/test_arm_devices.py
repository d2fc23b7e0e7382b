"""What an ARM agent reports, from recorded /proc/cpuinfo files of real boards, and how a
run under an emulator is recognised (these paths cannot run natively here)."""

import platform

from agents import devices

# Raspberry Pi 5 (BCM2712): four Cortex-A76, /proc/cpuinfo as its kernel prints it.
PI5 = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x4
CPU part\t: 0xd0b
CPU revision\t: 1
""" * 4 + "Revision\t: d04170\nSerial\t\t: 0000000000000000\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n"

# Jetson Orin Nano: six Cortex-A78AE, no Model line.
ORIN = """processor\t: 0
model name\t: ARMv8 Processor rev 1 (v8l)
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp uscat ilrcpc flagm paca pacg
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x1
CPU part\t: 0xd42
CPU revision\t: 1
""" * 6

# A big.LITTLE phone-class SoC with a core the table does not know.
MIXED = ("CPU implementer\t: 0x41\nCPU part\t: 0xd05\n" * 4
         + "CPU implementer\t: 0x41\nCPU part\t: 0xd0d\n" * 3
         + "CPU implementer\t: 0x51\nCPU part\t: 0x805\n")


def test_arm_cores_are_named_from_the_kernels_part_numbers():
    assert devices.arm_cpu_name(PI5.splitlines()) == "4x ARM Cortex-A76"
    assert devices.arm_cpu_name(ORIN.splitlines()) == "6x ARM Cortex-A78AE"
    assert devices.arm_cpu_name(MIXED.splitlines()) == (
        "4x ARM Cortex-A55 + 3x ARM Cortex-A77 + 1x ARM core implementer 0x51 part 0x805")
    x86 = open("/proc/cpuinfo").read().splitlines() if platform.machine() == "x86_64" else []
    assert devices.arm_cpu_name(x86) is None


def test_cpu_model_prefers_the_boards_model_line(monkeypatch):
    devices.cpu_model.cache_clear()
    monkeypatch.setattr(devices, "_cpuinfo", lambda: PI5.splitlines())
    try:
        assert devices.cpu_model() == "Raspberry Pi 5 Model B Rev 1.0"
        devices.cpu_model.cache_clear()
        monkeypatch.setattr(devices, "_cpuinfo", lambda: [
            line for line in PI5.splitlines() if not line.startswith("Model")])
        assert devices.cpu_model() == "4x ARM Cortex-A76"
        assert devices.cpu_flags() == ["asimd", "asimddp", "asimdhp"]
        assert devices.int8_saturates(machine="aarch64") is False
    finally:
        devices.cpu_model.cache_clear()


def test_an_emulator_named_by_the_variable_marks_every_measurement(monkeypatch):
    monkeypatch.setenv(devices.EMULATOR_ENV, "qemu-user 7.2.22")
    kind = devices.host_kinds()[0]
    fp = devices.fingerprint(kind)
    assert fp["emulated"] is True and fp["emulator"] == "qemu-user 7.2.22"
    report = devices.host_report()
    assert report["emulated"] is True and report["emulator"] == "qemu-user 7.2.22"


def test_a_binfmt_handler_for_the_own_architecture_means_emulation(monkeypatch, tmp_path):
    monkeypatch.delenv(devices.EMULATOR_ENV, raising=False)
    monkeypatch.setattr(devices, "BINFMT", tmp_path)
    machine = platform.machine().lower()
    assert devices.emulator() is None  # no handler: native
    (tmp_path / f"qemu-{machine}").write_text("disabled\ninterpreter /usr/bin/qemu\n")
    assert devices.emulator() is None
    (tmp_path / f"qemu-{machine}").write_text("enabled\ninterpreter /usr/bin/qemu\n")
    assert devices.emulator() == f"qemu-user (binfmt_misc qemu-{machine} is enabled)"
    assert devices.fingerprint(devices.host_kinds()[0])["emulated"] is True


def test_this_host_runs_natively():
    assert devices.fingerprint(devices.host_kinds()[0]).get("emulator") is None

"""Energy from real counters only. CPU package energy comes from Intel RAPL through
/sys/class/powercap; ARM boards expose energy or power rails through hwmon (INA2xx/INA3221
current monitors, SoC PMICs); the GPU agent reads NVML's total-energy counter
(agents.probes.gpu). With no readable counter the figure is NULL and the reason is kept.

Every counter is read the same way: read_uj() -> microjoules since some origin, and
delta_uj(start, end) handling wrap-around. An idle window just before the timed loop gives
the host's idle power, which is subtracted: what is reported is the energy the inferences
added, not what the idle host would have drawn anyway."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

POWERCAP = Path("/sys/class/powercap")
HWMON = Path("/sys/class/hwmon")
IDLE_WINDOW_S = 1.0
POWER_SAMPLE_S = 0.01   # power-only rails: 100 Hz sampling, integrated by trapezoids


@dataclass
class RaplCounter:
    name: str
    energy_file: Path
    max_range_uj: int

    def read_uj(self) -> int:
        return int(self.energy_file.read_text())

    def delta_uj(self, start: int, end: int) -> int:
        """The counter wraps at max_energy_range_uj."""
        return end - start if end >= start else end + self.max_range_uj - start


def find_cpu_energy_counter() -> tuple[RaplCounter | None, str | None]:
    if not POWERCAP.is_dir():
        return None, "no /sys/class/powercap on this host (no RAPL; virtual machines rarely expose it)"
    for zone in sorted(POWERCAP.glob("intel-rapl:*")):
        if zone.name.count(":") != 1:
            continue  # sub-zones (core, uncore, dram) are parts of a package
        energy = zone / "energy_uj"
        try:
            name = (zone / "name").read_text().strip()
            max_range = int((zone / "max_energy_range_uj").read_text())
            energy.read_text()
        except PermissionError:
            return None, f"{energy} is not readable by this user (needs root or a udev rule)"
        except OSError as exc:
            return None, f"cannot read {energy}: {exc}"
        return RaplCounter(f"rapl:{zone.name}:{name}", energy, max_range), None
    return None, "no intel-rapl package zone under /sys/class/powercap"


@dataclass
class HwmonEnergyCounter:
    """A hwmon `energyN_input` file: cumulative microjoules (some PMICs and INA23x drivers)."""
    name: str
    energy_file: Path
    max_range_uj: int = 2**64

    def read_uj(self) -> int:
        return int(self.energy_file.read_text())

    def delta_uj(self, start: int, end: int) -> int:
        return end - start if end >= start else end + self.max_range_uj - start


@dataclass
class HwmonPowerCounter:
    """A hwmon power rail, sampled in a background thread and integrated, so it reads like
    an energy counter: a `powerN_input` file (microwatts, e.g. INA219/INA226 rails and
    Raspberry Pi power HATs), or a rail with voltage and current only (`inN_input` in mV x
    `currN_input` in mA = microwatts: the INA3221 on Jetson boards). The sampler wakes
    every POWER_SAMPLE_S; that is the one cost it adds beside the timed loop."""
    name: str
    read_uw: Callable[[], float]
    _energy_uj: float = 0.0
    _last: tuple[float, float] | None = None
    _thread: threading.Thread | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _sample(self) -> None:
        now, watts_uw = time.perf_counter(), self.read_uw()
        with self._lock:
            if self._last is not None:
                self._energy_uj += integrate_power([self._last, (now, watts_uw)])
            self._last = (now, watts_uw)

    def _run(self) -> None:
        while not self._stop.wait(POWER_SAMPLE_S):
            self._sample()

    def read_uj(self) -> int:
        if self._thread is None:
            self._sample()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        self._sample()
        with self._lock:
            return int(self._energy_uj)

    def delta_uj(self, start: int, end: int) -> int:
        return end - start

    def close(self) -> None:
        self._stop.set()


def integrate_power(trace: list[tuple[float, float]]) -> float:
    """Microjoules from (seconds, microwatts) samples, by the trapezoid rule."""
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(trace, trace[1:]))


def find_board_energy_counter() -> tuple[object | None, str | None]:
    """The first hwmon energy counter, else the first power rail, else the first rail with
    voltage and current (ARM boards)."""
    if not HWMON.is_dir():
        return None, "no /sys/class/hwmon on this host"
    found = []
    for chip in sorted(HWMON.glob("hwmon*")):
        try:
            chip_name = (chip / "name").read_text().strip()
        except OSError:
            continue
        for kind, pattern in (("energy", "energy*_input"), ("power", "power*_input")):
            for path in sorted(chip.glob(pattern)):
                found.append((kind, f"hwmon:{chip_name}:{_label(path)}", (path,)))
        for current in sorted(chip.glob("curr*_input")):
            voltage = chip / current.name.replace("curr", "in", 1)
            if voltage.is_file():  # the same channel's bus voltage (INA3221: in1..3)
                found.append(("volt-amp", f"hwmon:{chip_name}:{_label(voltage)}",
                              (voltage, current)))
    order = {"energy": 0, "power": 1, "volt-amp": 2}
    for kind, name, paths in sorted(found, key=lambda f: order[f[0]]):
        try:
            for path in paths:
                path.read_text()
        except OSError as exc:
            return None, f"cannot read {paths[0]}: {exc}"
        if kind == "energy":
            return HwmonEnergyCounter(name, paths[0]), None
        if kind == "power":
            return HwmonPowerCounter(name, lambda p=paths[0]: float(p.read_text())), None
        volts, amps = paths
        return HwmonPowerCounter(  # mV x mA = microwatts
            name + " (V x I)", lambda v=volts, a=amps: float(v.read_text()) * float(
                a.read_text())), None
    return None, "no hwmon energy counter, power rail or voltage-and-current rail on this host"


def _label(path: Path) -> str:
    label_file = path.with_name(path.name.replace("_input", "_label"))
    return label_file.read_text().strip() if label_file.is_file() else path.stem


def idle_power_mw(counter, seconds: float = IDLE_WINDOW_S) -> tuple[float, float]:
    """(mean power in mW, window in s) of this host doing nothing, just before a timed loop."""
    start, t0 = counter.read_uj(), time.perf_counter()
    time.sleep(seconds)
    end, t1 = counter.read_uj(), time.perf_counter()
    return counter.delta_uj(start, end) / 1000.0 / (t1 - t0), t1 - t0


def energy_summary(counter, start_uj: int, end_uj: int, seconds: float,
                   inferences: int, idle_mw: float | None = None,
                   idle_window_s: float | None = None) -> dict:
    """mJ per inference net of the idle baseline (never below zero), mean power over the
    window (gross: what the sensor saw), the sensor, the window and the idle baseline."""
    gross_mj = counter.delta_uj(start_uj, end_uj) / 1000.0
    # mW x s = mJ
    net_mj = gross_mj if idle_mw is None else max(0.0, gross_mj - idle_mw * seconds)
    note = (f"net of idle baseline {idle_mw:.0f} mW measured over {idle_window_s:.2f} s "
            f"just before" if idle_mw is not None else "gross: no idle baseline")
    return {
        "energy_sensor": counter.name,
        "energy_mj_per_inference": net_mj / inferences if inferences else None,
        "mean_power_mw": gross_mj / seconds if seconds > 0 else None,
        "energy_window_s": seconds,
        "energy_idle_mw": idle_mw,
        "energy_note": note,
    }

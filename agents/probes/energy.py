"""Energy from real counters only. CPU package energy comes from Intel RAPL through
/sys/class/powercap; with no readable counter the figure is NULL and the reason is kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")


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


def energy_summary(counter: RaplCounter, start_uj: int, end_uj: int, seconds: float,
                   inferences: int) -> dict:
    joules_mj = counter.delta_uj(start_uj, end_uj) / 1000.0
    return {
        "energy_sensor": counter.name,
        "energy_mj_per_inference": joules_mj / inferences if inferences else None,
        "mean_power_mw": joules_mj / seconds if seconds > 0 else None,
        "energy_window_s": seconds,
    }

from pathlib import Path

import pytest

from agents.probes import energy


def test_wraparound_uses_the_counter_range():
    counter = energy.RaplCounter("rapl:test", Path("/nonexistent"), max_range_uj=1000)
    assert counter.delta_uj(100, 400) == 300
    assert counter.delta_uj(900, 100) == 200  # wrapped once


def test_summary_per_inference_and_power():
    counter = energy.RaplCounter("rapl:test", Path("/nonexistent"), max_range_uj=10**12)
    s = energy.energy_summary(counter, 0, 2_000_000, seconds=2.0, inferences=1000)  # 2 J
    assert s["energy_mj_per_inference"] == pytest.approx(2.0)
    assert s["mean_power_mw"] == pytest.approx(1000.0)
    assert s["energy_sensor"] == "rapl:test"


def test_fake_powercap_tree_is_read(tmp_path, monkeypatch):
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text("12345\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    monkeypatch.setattr(energy, "POWERCAP", tmp_path)
    counter, reason = energy.find_cpu_energy_counter()
    assert reason is None and counter.name == "rapl:intel-rapl:0:package-0"
    assert counter.read_uj() == 12345


def test_no_powercap_gives_a_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(energy, "POWERCAP", tmp_path / "missing")
    counter, reason = energy.find_cpu_energy_counter()
    assert counter is None and "powercap" in reason

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


# Hand-made RAPL counter values (uJ), not a recording: 1 s idle at 18 W, then 2 s of
# inference at 43 W, the counter wrapping at a max_energy_range_uj (RANGE, the value one
# 2-socket Xeon's powercap reports) on the way. Round numbers, so the expected results are
# exact.
RANGE = 262_143_328_850
IDLE_START, IDLE_END = RANGE - 30_000_000, RANGE - 12_000_000          # 18 J in 1 s
RUN_START, RUN_END = RANGE - 12_000_000, 74_000_000                      # 86 J in 2 s, wrapped


def test_idle_baseline_is_subtracted_from_a_wrapped_trace():
    counter = energy.RaplCounter("rapl:test", Path("/nonexistent"), max_range_uj=RANGE)
    idle_mw = counter.delta_uj(IDLE_START, IDLE_END) / 1000.0 / 1.0
    assert idle_mw == pytest.approx(18_000.0)
    s = energy.energy_summary(counter, RUN_START, RUN_END, seconds=2.0, inferences=1000,
                              idle_mw=idle_mw, idle_window_s=1.0)
    # 86 J gross - 18 W x 2 s idle = 50 J over 1000 inferences
    assert s["energy_mj_per_inference"] == pytest.approx(50.0)
    assert s["mean_power_mw"] == pytest.approx(43_000.0)
    assert s["energy_idle_mw"] == pytest.approx(18_000.0) and "idle baseline" in s["energy_note"]


def test_net_energy_never_goes_below_zero():
    counter = energy.RaplCounter("rapl:test", Path("/nonexistent"), max_range_uj=RANGE)
    s = energy.energy_summary(counter, 0, 1_000_000, seconds=1.0, inferences=10,
                              idle_mw=5_000.0, idle_window_s=1.0)
    assert s["energy_mj_per_inference"] == 0.0


def test_power_rail_trace_integrates_by_trapezoids():
    # (s, uW): an INA3221 rail ramping 1 W -> 3 W over 2 s, then flat for 1 s: 4 J + 3 J
    trace = [(0.0, 1e6), (1.0, 2e6), (2.0, 3e6), (3.0, 3e6)]
    assert energy.integrate_power(trace) == pytest.approx(7e6)


def test_fake_hwmon_rails_prefer_an_energy_counter(tmp_path, monkeypatch):
    ina = tmp_path / "hwmon0"
    ina.mkdir()
    (ina / "name").write_text("ina3221\n")
    (ina / "power1_input").write_text("2500000\n")
    (ina / "power1_label").write_text("VDD_IN\n")
    monkeypatch.setattr(energy, "HWMON", tmp_path)
    counter, reason = energy.find_board_energy_counter()
    assert reason is None and counter.name == "hwmon:ina3221:VDD_IN"
    first = counter.read_uj()
    import time
    time.sleep(0.05)
    assert counter.read_uj() > first   # 2.5 W integrated over the sleep
    counter.close()
    pmic = tmp_path / "hwmon1"
    pmic.mkdir()
    (pmic / "name").write_text("rpi_pmic\n")
    (pmic / "energy1_input").write_text("123\n")
    counter, reason = energy.find_board_energy_counter()
    assert isinstance(counter, energy.HwmonEnergyCounter) and counter.read_uj() == 123


def test_a_jetson_ina3221_rail_is_voltage_times_current(tmp_path, monkeypatch):
    """The ina3221 driver (Jetson boards) gives each channel's bus voltage (inN_input, mV)
    and current (currN_input, mA) and no power file: power is their product, in uW."""
    ina = tmp_path / "hwmon2"
    ina.mkdir()
    (ina / "name").write_text("ina3221\n")
    for channel, label, mv, ma in ((1, "VDD_IN", 5080, 1210), (2, "VDD_CPU_GPU_CV", 5080, 400)):
        (ina / f"in{channel}_label").write_text(label + "\n")
        (ina / f"in{channel}_input").write_text(f"{mv}\n")
        (ina / f"curr{channel}_input").write_text(f"{ma}\n")
    (ina / "in4_input").write_text("12\n")  # a shunt voltage: no current beside it
    monkeypatch.setattr(energy, "HWMON", tmp_path)
    counter, reason = energy.find_board_energy_counter()
    assert reason is None and counter.name == "hwmon:ina3221:VDD_IN (V x I)"
    assert counter.read_uw() == 5080 * 1210  # 6.15 W in microwatts
    first = counter.read_uj()
    import time
    time.sleep(0.05)
    assert counter.read_uj() > first
    counter.close()


def test_no_hwmon_gives_a_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(energy, "HWMON", tmp_path / "missing")
    counter, reason = energy.find_board_energy_counter()
    assert counter is None and "hwmon" in reason

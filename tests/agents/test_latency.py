"""The stopping rule, driven by a fake clock so the test is exact and takes no time."""

import itertools

import numpy as np

from agents.probes import latency


class FakeClock:
    def __init__(self, durations):
        self.now = 0.0
        self.durations = durations  # seconds each fn() call advances the clock

    def perf_counter(self):
        return self.now

    def call(self):
        self.now += next(self.durations)


def run_with(monkeypatch, durations, **rules):
    clock = FakeClock(durations)
    monkeypatch.setattr(latency.time, "perf_counter", clock.perf_counter)
    defaults = dict(warmup_s=0.1, min_iterations=50, min_seconds=1.0, max_seconds=10.0,
                    ci_rel_width=0.02)
    return latency.time_calls(clock.call, **(defaults | rules))


def test_steady_calls_stop_on_the_ci_target_after_both_minimums(monkeypatch):
    step = 1 / 64  # exact in binary floating point
    run = run_with(monkeypatch, itertools.repeat(step), warmup_s=0.125)
    assert run.stop_reason == "ci_target"
    assert len(run.samples_ms) >= 64  # min_seconds 1.0 at 1/64 s per call
    assert np.allclose(run.samples_ms, step * 1000)
    assert run.warmup_calls == 8  # 0.125 s of warm-up


def test_min_iterations_holds_for_slow_calls(monkeypatch):
    run = run_with(monkeypatch, itertools.repeat(0.5), min_iterations=50, max_seconds=1000)
    assert run.stop_reason == "ci_target" and len(run.samples_ms) == 50
    assert run.warmup_calls == latency.MIN_WARMUP_CALLS


def test_noisy_calls_run_until_max_seconds(monkeypatch):
    rng = np.random.default_rng(0)
    noisy = (float(x) for x in rng.uniform(0.001, 0.02, 100_000))
    run = run_with(monkeypatch, noisy, ci_rel_width=0.001, max_seconds=3.0)
    assert run.stop_reason == "max_seconds"
    assert 3.0 <= run.samples_ms.sum() / 1000 < 3.1


def test_a_runtime_clock_supplies_the_samples_and_host_times_are_kept(monkeypatch):
    readings = iter(float(x) for x in itertools.count(1))
    clock = FakeClock(itertools.repeat(0.01))
    monkeypatch.setattr(latency.time, "perf_counter", clock.perf_counter)
    run = latency.time_calls(clock.call, warmup_s=0, min_iterations=5, min_seconds=0,
                             max_seconds=10, ci_rel_width=10.0,
                             runtime_clock=lambda: next(readings))
    assert list(run.samples_ms[:3]) == [1.0, 2.0, 3.0]
    assert np.allclose(run.host_samples_ms, 10.0) and len(run.host_samples_ms) == len(run.samples_ms)


def test_without_a_runtime_clock_there_are_no_host_samples(monkeypatch):
    run = run_with(monkeypatch, itertools.repeat(1 / 64))
    assert run.host_samples_ms is None

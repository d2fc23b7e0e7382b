"""Throughput scenarios (agents/probes/scenarios.py): LoadGen's early-stopping estimate,
the server search's invariants on its own data, and the digits CNN through the worker in
each scenario on ONNX Runtime, OpenVINO, LiteRT and torch (short windows; no speed is
asserted)."""

import numpy as np
import pytest

from agents.probes.scenarios import Concurrency, early_stopping_p99, server_search
from harness.matrix.schema import MeasureSpec
from tests.agents.test_profile import FP32, _build
from tests.packs import manifest_payload


def test_early_stopping_needs_459_requests_for_a_p99_at_99_percent():
    assert early_stopping_p99(np.full(458, 1.0)) is None
    latencies = np.arange(1, 460, dtype=float)  # 459 requests, none allowed over
    assert early_stopping_p99(latencies) == 459.0
    # with many requests a few may be slower: the estimate is an order statistic below max
    many = np.arange(1, 10_001, dtype=float)
    estimate = early_stopping_p99(many)
    assert np.percentile(many, 99) < estimate < many.max()
    assert early_stopping_p99(np.array([1.0, np.inf] * 300)) == np.inf  # unserved count


def _stub_rates(p99_of_rate):
    """A server run whose p99 is a given function of the rate (the search's logic alone)."""
    def run_rate(conc, rate, duration_s, batch, seed=0):
        p99 = p99_of_rate(rate)
        return {"target_qps": rate, "achieved_qps": rate, "requests": 100, "served": 100,
                "early_stop_p99_ms": None, "latency_p50_ms": p99 / 2, "latency_p90_ms": p99,
                "latency_p99_ms": p99}
    return run_rate


CONC = Concurrency([lambda: None], 1, "test")


@pytest.mark.parametrize("noise_seed", range(5))
def test_the_search_answers_with_its_highest_met_rate_and_stays_in_bounds(noise_seed):
    rng = np.random.default_rng(noise_seed)
    # a knee at 300 qps, with noise: the search must stay consistent with what it saw
    result = server_search(CONC, 1, p99_bound_ms=10.0, low_qps=10.0, high_qps=1000.0,
                           duration_s=1.0, max_steps=7,
                           run_rate=_stub_rates(lambda r: (5 if r < 300 else 20)
                                                * rng.uniform(0.8, 1.2)))
    curve = result["curve"]
    assert 2 <= len(curve) <= 7
    assert all(10.0 <= s["target_qps"] <= 1000.0 for s in curve)
    met = [s["target_qps"] for s in curve if s["met"]]
    assert result["max_rate_qps"] == max(met)
    assert all(not s["met"] for s in curve if s["target_qps"] > result["max_rate_qps"])
    assert 150 < result["max_rate_qps"] <= 300 * 1.05


def test_a_bound_no_rate_meets_is_reported_as_such():
    result = server_search(CONC, 1, p99_bound_ms=1.0, low_qps=10.0, high_qps=1000.0,
                           duration_s=1.0, max_steps=6, run_rate=_stub_rates(lambda r: 50.0))
    assert result["max_rate_qps"] is None and result["stop_reason"] == "bound_not_met"
    assert "no rate in [10, 1e+03] queries/s keeps the p99 under 1 ms" in result["note"]
    assert len(result["curve"]) == 2  # the top, then the bottom: nothing in between


def test_the_top_of_the_range_meeting_the_bound_says_so():
    result = server_search(CONC, 4, p99_bound_ms=100.0, low_qps=1.0, high_qps=50.0,
                           duration_s=1.0, max_steps=6, run_rate=_stub_rates(lambda r: 2.0))
    assert result["max_rate_qps"] == 50.0 and result["stop_reason"] == "range_top"
    assert result["throughput_ips"] == 200.0 and "at least" in result["note"]


MEASURE = MeasureSpec(batch_sizes=[1], threads=1, warmup_s=0.05, min_iterations=20,
                      min_seconds=0.1, max_seconds=1.0, ci_rel_width=0.05, accuracy=False,
                      scenarios=["single_stream", "offline", "server"],
                      offline={"concurrency": 2, "threads": 2, "warmup_s": 0.1,
                               "min_seconds": 0.5, "max_seconds": 2.0, "min_requests": 20},
                      server={"p99_bound_ms": 1e-4, "duration_s": 0.3, "max_steps": 3,
                              "concurrency": 2, "threads": 2}).model_dump()


@pytest.mark.integration
@pytest.mark.parametrize("format_name", ["onnx", "openvino", "tflite", "torch"])
def test_the_digits_cnn_in_every_scenario_through_the_worker(format_name, cache_dir):
    from agents.launcher import run_cell

    manifest = _build(format_name, FP32, cache_dir)
    result = run_cell(manifest_payload(manifest, MEASURE), timeout_s=300)
    assert result.ok, result.error
    (row,) = result.measurements
    assert row["latency_p50_ms"] > 0  # single stream, as always
    offline, server = row["scenarios"]
    assert offline["scenario"] == "offline" and offline["throughput_ips"] > 0
    assert offline["concurrency"] == 2 and offline["concurrency_source"]
    assert offline["requests"] >= 20
    assert offline["latency_p99_ms"] >= offline["latency_p50_ms"] > 0
    # a 0.1 us bound: no real rate meets it, and the search says so within its steps
    assert server["scenario"] == "server" and server["max_rate_qps"] is None
    assert server["stop_reason"] == "bound_not_met" and len(server["curve"]) == 2
    assert all(s["served"] <= s["requests"] for s in server["curve"])
    if format_name == "openvino":
        assert offline["details"]["performance_hint"] == "THROUGHPUT"

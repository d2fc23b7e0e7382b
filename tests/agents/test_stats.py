import numpy as np
import pytest

from agents.probes.stats import median_ci, summarize


def test_summary_of_known_samples():
    samples = np.arange(1, 101, dtype=float)  # 1..100 ms
    s = summarize(samples, batch_size=4)
    assert s["latency_p50_ms"] == pytest.approx(50.5)
    assert s["latency_p90_ms"] == pytest.approx(90.1)
    assert s["latency_p99_ms"] == pytest.approx(99.01)
    assert s["latency_mean_ms"] == pytest.approx(50.5)
    assert s["latency_std_ms"] == pytest.approx(np.std(samples, ddof=1))
    assert s["latency_cv"] == pytest.approx(s["latency_std_ms"] / 50.5)
    assert s["latency_min_ms"] == 1.0 and s["iterations"] == 100
    assert s["throughput_ips"] == pytest.approx(4 * 1000 / 50.5)


def test_median_ci_contains_the_median_and_narrows_with_more_samples():
    rng = np.random.default_rng(0)
    small = rng.lognormal(0, 0.2, 50)
    large = rng.lognormal(0, 0.2, 5000)
    lo_s, hi_s = median_ci(small)
    lo_l, hi_l = median_ci(large)
    assert lo_s <= np.median(small) <= hi_s
    assert lo_l <= np.median(large) <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 4


def test_median_ci_coverage_is_about_95_percent():
    rng = np.random.default_rng(1)
    true_median = 1.0  # lognormal(0, s) has median exp(0) = 1
    hits = sum(lo <= true_median <= hi for lo, hi in
               (median_ci(rng.lognormal(0, 0.5, 200)) for _ in range(400)))
    assert 0.92 <= hits / 400 <= 0.99


def test_too_few_samples_give_an_unbounded_interval():
    lo, hi = median_ci(np.array([1.0, 2.0, 3.0]))
    assert lo == float("-inf") and hi == float("inf")

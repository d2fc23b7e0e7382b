import numpy as np
import pytest

from agents.probes.stats import median_ci, process_median_ci, summarize


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


def test_process_ci_covers_processes_that_sit_apart():
    """Three processes 5% apart: the order-statistic CI of the pooled samples misses two of
    the process medians; the process-aware CI spans them all."""
    rng = np.random.default_rng(1)
    groups = [rng.lognormal(np.log(m), 0.05, 2000) for m in (1.00, 1.05, 1.10)]
    pooled_lo, pooled_hi = median_ci(np.concatenate(groups))
    medians = [np.median(g) for g in groups]
    assert sum(pooled_lo <= m <= pooled_hi for m in medians) <= 1
    lo, hi = process_median_ci(groups)
    assert lo <= min(medians) and hi >= max(medians)
    assert lo >= min(medians) * 0.99 and hi <= max(medians) * 1.01  # not absurdly wide


def test_process_ci_of_one_process_is_the_order_statistic_ci():
    g = np.random.default_rng(2).lognormal(0, 0.1, 500)
    assert process_median_ci([g]) == median_ci(g)


def test_process_ci_of_alike_processes_stays_narrow():
    rng = np.random.default_rng(3)
    groups = [rng.lognormal(0, 0.05, 3000) for _ in range(5)]
    lo, hi = process_median_ci(groups)
    assert (hi - lo) / np.median(np.concatenate(groups)) < 0.02

"""Throughput under load, after MLPerf LoadGen's scenarios: Offline (every request at once,
as many in flight as the runtime's own concurrency allows) and Server (requests arriving
on a Poisson schedule at a target rate, latency counted from each request's scheduled
arrival so queueing counts, and the highest rate whose p99 stays under a bound).

A runtime gives a scenario its concurrency (Session.concurrent): N callables, each safe on
a thread of its own (OpenVINO: N infer requests of a model compiled with the THROUGHPUT
hint; ONNX Runtime: concurrent run() calls on one session; LiteRT: one interpreter per
thread; torch: the module from N threads). The runtimes release the GIL while they infer,
so N Python threads keep N inferences in flight.

Numbers: inferences per second (requests x batch / seconds), the concurrency used and where
it came from, latency percentiles under that load, the stopping reason; for Server, every
rate tried (the curve), the highest meeting the bound, and LoadGen's early-stopping
estimate of the p99 where there are enough requests for it."""

from __future__ import annotations

import math
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

WINDOW_S = 0.5               # throughput windows for the offline CI
Z95 = 1.959963984540054
# LoadGen's early stopping for the server scenario: the tail percentile and the confidence
# with which the reported p99 is an upper bound of the true one.
TAIL, CONFIDENCE = 0.99, 0.99
MAX_DRAIN_FACTOR = 3.0       # a rate far above capacity: stop waiting after 3x the duration


class ScenarioUnavailable(Exception):
    """A runtime without a concurrent path here; the message is the reason stored."""


@dataclass
class Concurrency:
    calls: list[Callable[[], object]]   # one per worker thread
    threads_per_call: int               # the runtime's own threads behind each call
    source: str                         # where the number came from (a hint, the matrix)
    details: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.calls)


def _percentiles(latencies_ms: np.ndarray) -> dict:
    if not len(latencies_ms):
        return {"latency_p50_ms": None, "latency_p90_ms": None, "latency_p99_ms": None}
    finite = np.where(np.isfinite(latencies_ms), latencies_ms, np.inf)
    p50, p90, p99 = np.percentile(finite, [50, 90, 99], method="higher")
    return {"latency_p50_ms": float(p50), "latency_p90_ms": float(p90),
            "latency_p99_ms": float(p99)}


def _warm(conc: Concurrency, seconds: float) -> None:
    threads = [threading.Thread(target=_loop_for, args=(call, seconds)) for call in conc.calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _loop_for(call: Callable[[], object], seconds: float) -> None:
    end = time.perf_counter() + seconds
    call()
    while time.perf_counter() < end:
        call()


def offline(conc: Concurrency, batch: int, *, warmup_s: float, min_seconds: float,
            max_seconds: float, min_requests: int, ci_rel_width: float) -> dict:
    """Every worker keeps one request in flight until the stopping rule holds: at least
    min_seconds and min_requests, and the 95% CI of the throughput (over WINDOW_S windows)
    within ci_rel_width of it; or max_seconds."""
    _warm(conc, warmup_s)
    stop = threading.Event()
    spans: list[list[tuple[float, float]]] = [[] for _ in conc.calls]

    def worker(call, out):
        clock = time.perf_counter
        while not stop.is_set():
            t0 = clock()
            call()
            out.append((t0, clock()))

    threads = [threading.Thread(target=worker, args=(call, out), daemon=True)
               for call, out in zip(conc.calls, spans)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    reason = "max_seconds"
    while True:
        time.sleep(WINDOW_S / 2)
        now = time.perf_counter()
        elapsed = now - start
        if elapsed >= max_seconds:
            break
        done = [t1 for out in spans for _, t1 in list(out)]
        if elapsed >= min_seconds and len(done) >= min_requests:
            low, high, rate = _throughput_ci(done, start, now, batch)
            if rate and low is not None and (high - low) <= ci_rel_width * rate:
                reason = "ci_target"
                break
    stop.set()
    for t in threads:
        t.join()
    end = max((t1 for out in spans for _, t1 in out), default=start)
    completions = [t1 for out in spans for _, t1 in out]
    latencies = np.array([(t1 - t0) * 1000.0 for out in spans for t0, t1 in out])
    low, high, rate = _throughput_ci(completions, start, end, batch)
    return {"scenario": "offline", "concurrency": conc.size,
            "threads_per_request": conc.threads_per_call, "concurrency_source": conc.source,
            "throughput_ips": rate, "throughput_ci_low": low, "throughput_ci_high": high,
            "requests": len(completions), "duration_s": end - start, "stop_reason": reason,
            **_percentiles(latencies), "details": conc.details}


def _throughput_ci(completions: list[float], start: float, end: float,
                   batch: int) -> tuple[float | None, float | None, float | None]:
    """Inferences per second over [start, end], and a 95% CI from the per-window rates."""
    span = end - start
    if span <= 0 or not completions:
        return None, None, None
    rate = len([t for t in completions if t <= end]) * batch / span
    windows = int(span // WINDOW_S)
    if windows < 3:
        return None, None, rate
    counts = np.histogram(completions, bins=windows, range=(start, start + windows * WINDOW_S))[0]
    rates = counts * batch / WINDOW_S
    half = Z95 * float(rates.std(ddof=1)) / math.sqrt(windows)
    return rate - half, rate + half, rate


def early_stopping_p99(latencies_ms: np.ndarray, tail: float = TAIL,
                       confidence: float = CONFIDENCE) -> float | None:
    """LoadGen's early-stopping estimate: the smallest latency L such that, with
    `confidence`, at least `tail` of all requests finish within L, from n requests of which
    k were slower. With k slower requests allowed, the binomial probability of seeing at
    most k of n over the true `tail` percentile must stay below 1 - confidence. None when
    n is too small for even k = 0 (459 requests for p99 at 99%)."""
    n = len(latencies_ms)
    if n == 0:
        return None
    ordered = np.sort(np.where(np.isfinite(latencies_ms), latencies_ms, np.inf))
    p = 1.0 - tail
    allowed, cdf, term = -1, 0.0, (1.0 - p) ** n  # term: P(X = k), from k = 0 up
    for k in range(n):
        cdf += term
        if cdf > 1.0 - confidence:
            break
        allowed = k
        term *= (n - k) / (k + 1) * p / (1.0 - p)
    if allowed < 0:
        return None
    return float(ordered[n - 1 - allowed])


def server_rate(conc: Concurrency, rate_qps: float, duration_s: float, batch: int,
                seed: int = 0) -> dict:
    """Requests at Poisson arrivals of `rate_qps` for `duration_s`, served by the
    concurrency's workers from one queue; each latency runs from the scheduled arrival."""
    gaps = np.random.default_rng(seed).exponential(1.0 / rate_qps,
                                                   int(rate_qps * duration_s * 1.5) + 16)
    arrivals = np.cumsum(gaps)
    arrivals = arrivals[arrivals < duration_s]
    pending: queue.Queue = queue.Queue()
    latencies = np.full(len(arrivals), np.inf)
    give_up = threading.Event()

    def worker(call):
        while True:
            item = pending.get()
            if item is None or give_up.is_set():
                return
            index, due = item
            call()
            latencies[index] = (time.perf_counter() - due) * 1000.0

    threads = [threading.Thread(target=worker, args=(call,), daemon=True) for call in conc.calls]
    for t in threads:
        t.start()
    start = time.perf_counter()
    for index, offset in enumerate(arrivals):  # the driver: issue each request on time
        due = start + float(offset)
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        pending.put((index, due))
    for _ in threads:
        pending.put(None)
    deadline = start + duration_s * MAX_DRAIN_FACTOR
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.perf_counter()))
    if any(t.is_alive() for t in threads):
        give_up.set()  # requests still queued count as never served (infinite latency)
        for t in threads:
            t.join()
    served = int(np.isfinite(latencies).sum())
    return {"target_qps": rate_qps, "achieved_qps": served / duration_s,
            "requests": len(arrivals), "served": served,
            "early_stop_p99_ms": early_stopping_p99(latencies), **_percentiles(latencies)}


def _meets(step: dict, bound_ms: float) -> tuple[bool, str]:
    """Whether a rate meets the bound: LoadGen's early-stopping p99 where there are enough
    requests for it, else the observed p99."""
    if step["served"] < step["requests"]:
        return False, "observed"
    if step["early_stop_p99_ms"] is not None:
        return step["early_stop_p99_ms"] <= bound_ms, "early_stopping"
    return (step["latency_p99_ms"] is not None and step["latency_p99_ms"] <= bound_ms,
            "observed")


def server_search(conc: Concurrency, batch: int, *, p99_bound_ms: float, low_qps: float,
                  high_qps: float, duration_s: float, max_steps: int,
                  run_rate: Callable[..., dict] = server_rate) -> dict:
    """The highest rate in [low_qps, high_qps] whose p99 stays under the bound, by bisection
    on a log scale: the top of the range first (met: the answer is at least that), then the
    bottom (not met: no rate in the range meets the bound), then midpoints. Every rate
    tried is kept: the answer is the highest rate that met, and every rate tried above it
    missed (the search's invariant)."""
    curve: list[dict] = []

    def trial(rate: float) -> bool:
        step = run_rate(conc, rate, duration_s, batch, seed=len(curve))
        step["met"], step["basis"] = _meets(step, p99_bound_ms)
        step["step"] = len(curve)
        curve.append(step)
        return step["met"]

    result = {"scenario": "server", "concurrency": conc.size,
              "threads_per_request": conc.threads_per_call, "concurrency_source": conc.source,
              "p99_bound_ms": p99_bound_ms, "search_low_qps": low_qps,
              "search_high_qps": high_qps, "duration_s": duration_s, "curve": curve,
              "details": conc.details}
    if trial(high_qps):
        best, note = high_qps, "the top of the search range meets the bound: the highest " \
                               "rate is at least this"
    elif not trial(low_qps):
        best, note = None, (f"no rate in [{low_qps:.3g}, {high_qps:.3g}] queries/s keeps "
                            f"the p99 under {p99_bound_ms:g} ms")
    else:
        low, high = low_qps, high_qps
        while len(curve) < max_steps and high / low > 1.05:
            mid = math.sqrt(low * high)
            if trial(mid):
                low = mid
            else:
                high = mid
        best, note = low, None
    at_best = next((s for s in curve if s["target_qps"] == best), None)
    result |= {"max_rate_qps": best,
               "throughput_ips": best * batch if best is not None else None,
               "p99_at_max_ms": at_best["latency_p99_ms"] if at_best else None,
               "early_stop_p99_ms": at_best["early_stop_p99_ms"] if at_best else None,
               "requests": sum(s["requests"] for s in curve),
               "stop_reason": "bound_not_met" if best is None else (
                   "range_top" if best == high_qps else "bisection"),
               "note": note}
    return result


def run_scenarios(session, inputs: dict, batch: int, measure: dict) -> list[dict]:
    """The cell's offline and server scenarios on one (shape, batch), after its timed loop:
    one result per scenario, or the reason it was not measured."""
    wanted = [s for s in measure.get("scenarios", ["single_stream"]) if s != "single_stream"]
    results: list[dict] = []
    offline_spec, server_spec = measure.get("offline") or {}, measure.get("server") or {}
    offline_result = None
    for name in wanted:
        spec = offline_spec if name == "offline" else server_spec
        try:
            conc = session.concurrent(inputs, spec.get("concurrency"), spec.get("threads"))
        except ScenarioUnavailable as exc:
            results.append({"scenario": name, "note": str(exc)})
            continue
        if name == "offline":
            offline_result = offline(
                conc, batch, warmup_s=offline_spec.get("warmup_s", 0.5),
                min_seconds=offline_spec.get("min_seconds", 2.0),
                max_seconds=offline_spec.get("max_seconds", 10.0),
                min_requests=offline_spec.get("min_requests", 50),
                ci_rel_width=offline_spec.get("ci_rel_width", 0.05))
            results.append(offline_result)
            continue
        rates = server_spec.get("rates")
        if not rates:
            capacity = offline_result if offline_result and offline_result.get(
                "throughput_ips") else offline(conc, batch, warmup_s=0.2, min_seconds=1.0,
                                               max_seconds=3.0, min_requests=20,
                                               ci_rel_width=0.1)
            if not capacity.get("throughput_ips"):
                results.append({"scenario": "server", "note": "no offline throughput to "
                                "derive the search range from; give measure.server.rates"})
                continue
            top = 1.2 * capacity["throughput_ips"] / batch
            rates = [top / 64, top]
        else:
            _warm(conc, 0.2)
        results.append(server_search(conc, batch, p99_bound_ms=server_spec["p99_bound_ms"],
                                     low_qps=rates[0], high_qps=rates[1],
                                     duration_s=server_spec.get("duration_s", 5.0),
                                     max_steps=server_spec.get("max_steps", 6)))
    return results

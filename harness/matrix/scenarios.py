"""The throughput scenarios' settings in a matrix's measure section
(`measure.scenarios`, `measure.offline`, `measure.server`; agents/probes/scenarios.py runs
them)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from harness.matrix.methods import Strict

SCENARIOS = ("single_stream", "offline", "server")


class OfflineSpec(Strict):
    """MLPerf's Offline scenario: every request at once, as many in flight as the runtime's
    own concurrency allows (agents/probes/scenarios.py)."""
    # requests in flight: None = the runtime's throughput hint (OpenVINO's optimal number of
    # infer requests), else one single-threaded request per core of the thread budget
    concurrency: int | None = Field(default=None, ge=1, le=1024)
    # the scenario's thread budget: None = every core of the agent (benchmark_app's default)
    threads: int | None = Field(default=None, ge=1, le=1024)
    warmup_s: float = Field(default=0.5, ge=0, le=600)
    min_seconds: float = Field(default=2.0, ge=0, le=3600)
    max_seconds: float = Field(default=10.0, gt=0, le=86_400)
    min_requests: int = Field(default=50, ge=1, le=10_000_000)
    # stop once the throughput's 95% CI is this narrow (relative to it)
    ci_rel_width: float = Field(default=0.05, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> "OfflineSpec":
        if self.max_seconds < self.min_seconds:
            raise ValueError("max_seconds must be >= min_seconds")
        return self


class ServerSpec(Strict):
    """MLPerf's Server scenario: Poisson arrivals at a target rate, latency from each
    request's scheduled arrival; the highest rate whose p99 stays under the bound."""
    p99_bound_ms: float | None = Field(default=None, gt=0, le=3_600_000)
    # target rates searched, [low, high] in queries per second; None: from the cell's
    # offline throughput (1.2x it at the top, 1/64 of that at the bottom)
    rates: list[Annotated[float, Field(gt=0, le=1e7)]] | None = Field(default=None,
                                                                       min_length=2,
                                                                       max_length=2)
    duration_s: float = Field(default=5.0, gt=0, le=3600)
    max_steps: int = Field(default=6, ge=2, le=30)
    concurrency: int | None = Field(default=None, ge=1, le=1024)
    threads: int | None = Field(default=None, ge=1, le=1024)

    @model_validator(mode="after")
    def _range(self) -> "ServerSpec":
        if self.rates and self.rates[0] >= self.rates[1]:
            raise ValueError("rates: give [low, high] with low < high (queries per second)")
        return self

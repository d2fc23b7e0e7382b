"""Throughput scenarios in the database: one row per scenario beside the single-stream
measurement, the server search's curve, and the three answers side by side per variant."""

import duckdb

from harness.matrix.expand import Cell
from harness.results.store import Store
from tests.harness.results.test_report import manifest, measurement

OFFLINE = {"scenario": "offline", "concurrency": 4, "threads_per_request": 1,
           "concurrency_source": "OpenVINO THROUGHPUT hint: OPTIMAL_NUMBER_OF_INFER_REQUESTS=4",
           "throughput_ips": 900.0, "throughput_ci_low": 880.0, "throughput_ci_high": 920.0,
           "latency_p50_ms": 4.0, "latency_p90_ms": 4.5, "latency_p99_ms": 6.0,
           "requests": 1800, "duration_s": 2.0, "stop_reason": "ci_target",
           "details": {"streams": 4}}
CURVE = [{"step": 0, "target_qps": 1000.0, "achieved_qps": 870.0, "requests": 5000,
          "served": 4350, "latency_p50_ms": 90.0, "latency_p90_ms": 180.0,
          "latency_p99_ms": 240.0, "early_stop_p99_ms": 250.0, "met": False,
          "basis": "early_stopping"},
         {"step": 1, "target_qps": 600.0, "achieved_qps": 598.0, "requests": 3000,
          "served": 3000, "latency_p50_ms": 3.0, "latency_p90_ms": 5.0, "latency_p99_ms": 9.0,
          "early_stop_p99_ms": 9.5, "met": True, "basis": "early_stopping"}]
SERVER = {"scenario": "server", "concurrency": 4, "p99_bound_ms": 10.0, "max_rate_qps": 600.0,
          "throughput_ips": 600.0, "p99_at_max_ms": 9.0, "early_stop_p99_ms": 9.5,
          "requests": 8000, "stop_reason": "bisection", "curve": CURVE}


def _database(path, variants: list[tuple[str, str, float, list[dict]]]):
    """A run r1 with one openvino cell per (method, precision, p50, scenarios); read-only."""
    s = Store(path)
    s.start_run({"run_id": "r1", "matrix_name": "t"})
    s.write_device("d1", {"kind": "intel-cpu", "host": "box", "name": "cpu"}, {})
    for method, precision, p50, scenarios in variants:
        config = ([{"kind": "baseline"}] if method == "fp32"
                  else [{"kind": "quantize", "mode": "static"}])
        s.write_variant(manifest(f"v-{method}", method, "openvino", config, precision=precision))
        s.write_cell("r1", Cell("m", method, "openvino", "intel-cpu"), status="ok",
                     variant_id=f"v-{method}", device_id="d1",
                     measurements=[measurement(1, p50, 0.98) | {"scenarios": scenarios}])
    s.finish_run("r1", "ok")
    s.close()
    return duckdb.connect(str(path), read_only=True)


def test_scenarios_are_stored_beside_the_single_stream_row(tmp_path):
    con = _database(tmp_path / "r.duckdb", [("fp32", "fp32", 2.0, [OFFLINE, SERVER])])
    summary = con.execute("SELECT single_stream_p50_ms, offline_ips, offline_concurrency, "
                          "server_max_qps, server_p99_bound_ms FROM scenario_summary").fetchall()
    assert summary == [(2.0, 900.0, 4, 600.0, 10.0)]
    curve = con.execute("SELECT target_qps, met FROM server_rates ORDER BY step").fetchall()
    assert curve == [(1000.0, False), (600.0, True)]
    details = con.execute("SELECT details->>'streams' FROM scenario_results "
                          "WHERE scenario = 'offline'").fetchone()
    assert details == ("4",)
    con.close()


def test_recommend_by_throughput_picks_the_highest_of_the_scenario(tmp_path):
    from harness.results.recommend import recommend

    con = _database(tmp_path / "r.duckdb", [
        (method, precision, p50, [OFFLINE | {"throughput_ips": ips},
                                  SERVER | {"max_rate_qps": rate, "throughput_ips": rate}])
        for method, precision, p50, ips, rate in (("fp32", "fp32", 2.0, 900.0, 600.0),
                                                  ("int8", "int8", 1.5, 2500.0, 300.0))])
    (offline,) = recommend(con, metric="throughput", run_id="r1")
    assert (offline["method"], offline["value"], offline["fp32_value"]) == ("int8", 2500.0,
                                                                            900.0)
    (server,) = recommend(con, metric="throughput", scenario="server", run_id="r1")
    assert (server["method"], server["value"]) == ("fp32", 600.0)  # a different answer
    (latency,) = recommend(con, metric="p50", run_id="r1")
    assert latency["method"] == "int8"
    con.close()


def test_the_report_draws_latency_against_throughput(tmp_path):
    import re

    from harness.results.report import write_report

    con = _database(tmp_path / "r.duckdb", [("fp32", "fp32", 2.0, [OFFLINE, SERVER])])
    html = write_report(con, "r1", tmp_path / "r.html").read_text()
    con.close()
    assert re.search(r'<img alt="latency vs throughput: m on intel-cpu, batch 1" '
                     r'src="data:image/png;base64,', html)
    assert "OpenVINO THROUGHPUT hint" in html

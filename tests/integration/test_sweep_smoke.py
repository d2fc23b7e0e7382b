"""`harness sweep matrix/smoke.yaml` end to end: real Ray, real exporters and ONNX Runtime,
a real DuckDB file, queried through the CLI."""

import itertools
import json

import pytest

from tests.conftest import run_cli
from tests.integration.conftest import SMOKE, query

pytestmark = pytest.mark.integration


def test_every_runnable_cell_is_ok_with_real_numbers(swept):
    db, (run1, _), _ = swept
    plan = json.loads(run_cli("plan", SMOKE, "--json").stdout)
    rows = query(db, f"select * from results where run_id = '{run1}' and status <> 'skipped'")
    measured = {r["cell_id"] for r in rows}
    assert measured == {c["cell_id"] for c in plan["cells"]}
    for r in rows:
        assert r["status"] == "ok", r["error"]
        assert r["latency_p50_ms"] > 0 and r["iterations"] >= 20
        assert r["latency_p50_ms"] <= r["latency_p99_ms"]
        assert r["accuracy_top1"] >= 0.97, r  # held-out digits, int8 included
        assert r["fidelity_top1_agreement"] >= 0.97
        assert r["peak_rss_mb"] > 0 and r["load_ms"] > 0 and r["size_bytes"] > 0
    assert {r["precision"] for r in rows} == {"fp32", "int8"}


def test_every_measured_row_has_its_per_layer_profile(swept):
    """smoke.yaml sets measure.profile: each (cell, batch) has layers whose times add up to
    about the run the profiler saw, and the hotspot table reads from them."""
    db, (run1, _), _ = swept
    rows = query(db, f"select cell_id, batch_size, latency_p50_ms, profile_total_ms, "
                     f"profile_runs, profile_note from results where run_id = '{run1}' "
                     "and status = 'ok'")
    assert rows
    layers = {(r["cell_id"], r["batch_size"]): r for r in query(
        db, f"select cell_id, batch_size, count(*) as n, sum(time_ms) as ms, "
            f"min(time_ms) as least from op_profiles where run_id = '{run1}' group by all")}
    for r in rows:
        assert r["profile_note"] is None and r["profile_runs"] == 5, r
        found = layers[(r["cell_id"], r["batch_size"])]
        assert found["n"] >= 4 and found["least"] >= 0
        assert found["ms"] == pytest.approx(r["profile_total_ms"], rel=0.5)
    out = run_cli("profile", "digits-cnn/int8/onnx/intel-cpu", "--run", run1, "--db", str(db))
    assert out.returncode == 0, out.stderr
    assert "QLinearConv" in out.stdout


def test_skipped_cells_are_stored_with_reasons(swept):
    db, (run1, _), _ = swept
    rows = query(db, f"select cell_id, error from cells where run_id = '{run1}' "
                     "and status = 'skipped'")
    assert {r["cell_id"] for r in rows} == {"digits-cnn/int8-dyn/torch/intel-cpu",
                                            "digits-cnn/int8/torch/intel-cpu"}
    assert all(r["error"] for r in rows)


def test_raw_samples_match_the_iteration_counts(swept):
    db, (run1, _), _ = swept
    rows = query(db, f"""select m.cell_id, m.batch_size, m.iterations, count(s.iteration) as n,
                           median(s.latency_ms) as med, m.latency_p50_ms
                        from measurements m join latency_samples s using (run_id, cell_id,
                        batch_size) where run_id = '{run1}' group by all""")
    assert len(rows) == 8
    for r in rows:
        assert r["n"] == r["iterations"]
        assert r["med"] == pytest.approx(r["latency_p50_ms"])


def test_second_sweep_rebuilds_nothing(swept):
    db, (run1, run2), _ = swept
    rows = query(db, f"select cell_id, build_cached, variant_id from cells "
                     f"where run_id = '{run2}' and status = 'ok'")
    assert rows and all(r["build_cached"] for r in rows)
    first = {r["cell_id"]: r["variant_id"] for r in query(
        db, f"select cell_id, variant_id from cells where run_id = '{run1}' and status = 'ok'")}
    assert first == {r["cell_id"]: r["variant_id"] for r in rows}


def test_each_variant_is_measured_before_the_next_build_starts(swept):
    """Results stream: on one node a variant's cells are measured as soon as it is built,
    before the next build (queued builds used to run ahead of every measurement). A cell's
    started_at is when its measurement was submitted, right after its variant's build."""
    db, runs, _ = swept
    for run in runs:
        rows = query(db, f"select variant_id, min(started_at) as first_start, "
                         f"max(finished_at) as last_finish from cells where run_id = '{run}' "
                         f"and status = 'ok' group by variant_id order by first_start")
        assert len(rows) == 4
        for earlier, later in itertools.pairwise(rows):
            assert earlier["last_finish"] <= later["first_start"], (earlier, later)


def test_the_sweep_records_where_its_time_went(swept):
    db, runs, _ = swept
    for run in runs:
        cells = query(db, f"select build_wall_s, measure_wall_s, measure_phases from cells "
                          f"where run_id = '{run}' and status = 'ok'")
        assert cells and all(c["build_wall_s"] > 0 and c["measure_wall_s"] > 0 for c in cells)
        for cell in cells:  # the measurement's wall time, phase by phase
            phases = json.loads(cell["measure_phases"])
            assert {"start", "load", "timed"} <= set(phases)
            assert sum(phases.values()) == pytest.approx(cell["measure_wall_s"], abs=0.05)
        [row] = query(db, f"select started_at <= cluster_ready_at and cluster_ready_at <= "
                          f"finished_at as ordered from runs where run_id = '{run}'")
        assert row["ordered"]


def test_variants_carry_parity_and_toolchain(swept):
    db, _, _ = swept
    rows = query(db, "select format, precision, parity, toolchain, suspect from variants")
    assert len(rows) == 4
    for r in rows:
        parity = json.loads(r["parity"]) if isinstance(r["parity"], str) else r["parity"]
        assert parity["ok"] and not r["suspect"] and parity["samples"] == 360
    assert any("onnxruntime" in str(r["toolchain"]) for r in rows)


def test_runs_are_recorded_and_the_summary_printed(swept):
    db, (run1, run2), first = swept
    rows = query(db, "select run_id, status, matrix_name, harness_version, host, finished_at "
                     "from runs order by started_at")
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert all(r["finished_at"] and r["host"] for r in rows)
    assert "Best variant per model" in first.stdout
    assert run1 in first.stdout
    # the sweep ends where the user looks next: the run's report, beside the database
    report = db.with_name(db.stem + ".report.html")
    assert f"report: {report}" in first.stdout
    # (the second sweep of the fixture rewrote it for its own run)
    assert run2 in report.read_text() and report.read_text().startswith("<!DOCTYPE html>")


def test_a_device_no_agent_advertises_is_unavailable_at_once(tmp_path, cache_dir):
    matrix = tmp_path / "arm.yaml"
    matrix.write_text("""
name: arm
models: [{name: digits-cnn, source: "builtin:digits_cnn", dataset: digits}]
methods: [{name: fp32, kind: baseline}, {name: int8-dyn, kind: quantize, mode: dynamic}]
formats: [onnx]
devices: [intel-cpu, arm-edge]
measure: {batch_sizes: [1], min_iterations: 10, min_seconds: 0.1, max_seconds: 1, warmup_s: 0.1}
""")
    db = tmp_path / "r.duckdb"
    out = run_cli("sweep", str(matrix), "--db", str(db), "--cache", str(cache_dir), timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {r["cell_id"]: r for r in query(db, "select cell_id, status, error from cells")}
    assert rows["digits-cnn/fp32/onnx/intel-cpu"]["status"] == "ok"
    arm = rows["digits-cnn/fp32/onnx/arm-edge"]
    assert arm["status"] == "unavailable" and "device:arm-edge" in arm["error"]
    # the opening line counts only what this machine can measure, and says what it lacks
    opening = next(line for line in out.stdout.splitlines() if line.startswith("run "))
    assert ": 2 cells to measure, 2 for devices this machine lacks, " in opening, opening
    # told once per reason, not once per cell: as the sweep finds it, and in the summary
    lines = [line for line in out.stdout.splitlines() if "device:arm-edge" in line]
    assert len(lines) == 2, lines
    assert lines[0].startswith("unavailable 2 cells: no agent advertises"), lines
    assert lines[1].strip().startswith("unavailable 2 cells (digits-cnn/fp32/onnx/arm-edge, "
                                       "digits-cnn/int8-dyn/onnx/arm-edge): no agent"), lines
    # a nightly gate wants every planned cell measured
    strict = run_cli("sweep", str(matrix), "--db", str(db), "--cache", str(cache_dir),
                     "--strict", timeout=600)
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "--strict" in strict.stdout and "2 planned cell(s) had no agent" in strict.stdout


def test_a_sweep_that_measured_nothing_fails(tmp_path, cache_dir):
    """The gpu-only case on a host (or cluster) without its GPU agent: every cell is
    unavailable, and a nightly must not look green."""
    matrix = tmp_path / "gpu.yaml"
    matrix.write_text("""
name: gpu
models: [{name: digits-cnn, source: "builtin:digits_cnn", dataset: digits}]
methods: [{name: fp32, kind: baseline}]
formats: [torch]
devices: [nvidia-gpu]
measure: {batch_sizes: [1], min_iterations: 10, min_seconds: 0.1, max_seconds: 1, warmup_s: 0.1}
""")
    from agents.devices import detect_kinds
    if "nvidia-gpu" in detect_kinds():
        pytest.skip("this host has an nvidia-gpu agent: the cell would be measured")
    db = tmp_path / "r.duckdb"
    out = run_cli("sweep", str(matrix), "--db", str(db), "--cache", str(cache_dir), timeout=600)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "no cell was measured" in out.stdout
    assert query(db, "select status from cells") == [{"status": "unavailable"}]

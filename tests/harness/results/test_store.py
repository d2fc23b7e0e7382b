import duckdb
import numpy as np
import pytest

from harness.errors import InputError
from harness.results.schema import SCHEMA_VERSION
from harness.matrix.expand import Cell
from harness.results.store import Store, open_read_only

CELL = Cell("m", "fp32", "onnx", "intel-cpu")
MANIFEST = {"variant_id": "v1", "model": "m", "method": "fp32",
            "method_config": [{"kind": "baseline"}], "format": "onnx", "precision": "fp32",
            "runtime": "onnxruntime", "artifact_path": "/x/model.onnx", "sha256": "ab",
            "size_bytes": 1234, "build_seconds": 1.5,
            "parity": {"ok": True, "suspect": False}, "toolchain": {"onnx": "1"}}


def measurement(batch_size, n=1000):
    samples = np.linspace(1.0, 2.0, n)
    return {"batch_size": batch_size, "threads": 1, "precision": "fp32",
            "latency_p50_ms": float(np.median(samples)), "iterations": n,
            "accuracy_top1": 0.98, "samples_ms": samples.tolist()}


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "r.duckdb")
    s.start_run({"run_id": "r1", "matrix_name": "t"})
    yield s
    s.close()


def test_fresh_database_is_at_the_current_schema_version(store):
    versions = store.con.execute("SELECT version FROM schema_version").fetchall()
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


def test_reopening_does_not_reapply_migrations(tmp_path):
    Store(tmp_path / "a.duckdb").close()
    s = Store(tmp_path / "a.duckdb")
    assert s.con.execute("SELECT max(version), count(*) FROM schema_version").fetchone() == (
        SCHEMA_VERSION, SCHEMA_VERSION)
    s.close()


def test_a_newer_database_is_refused(tmp_path):
    Store(tmp_path / "a.duckdb").close()
    con = duckdb.connect(str(tmp_path / "a.duckdb"))
    con.execute("INSERT INTO schema_version VALUES (999, now(), 'future')")
    con.close()
    with pytest.raises(InputError, match="newer than this harness"):
        Store(tmp_path / "a.duckdb")


def test_cell_rows_measurements_and_samples_land_together(store):
    store.write_variant(MANIFEST)
    store.write_cell("r1", CELL, status="ok", variant_id="v1",
                     measurements=[measurement(1), measurement(8, n=500)])
    rows = store.con.execute("SELECT model, method, format, device, status, batch_size, "
                             "size_bytes, iterations FROM results ORDER BY batch_size").fetchall()
    assert rows == [("m", "fp32", "onnx", "intel-cpu", "ok", 1, 1234, 1000),
                    ("m", "fp32", "onnx", "intel-cpu", "ok", 8, 1234, 500)]
    counts = store.con.execute("SELECT batch_size, count(*), max(iteration) FROM latency_samples "
                               "GROUP BY ALL ORDER BY 1").fetchall()
    assert counts == [(1, 1000, 999), (8, 500, 499)]


def test_a_failing_cell_write_leaves_nothing_behind(store):
    bad = measurement(1) | {"batch_size": None}  # violates the primary key
    with pytest.raises(duckdb.Error):
        store.write_cell("r1", CELL, status="ok", measurements=[measurement(8), bad])
    assert store.con.execute("SELECT count(*) FROM cells").fetchone()[0] == 0
    assert store.con.execute("SELECT count(*) FROM latency_samples").fetchone()[0] == 0


def test_skipped_cells_appear_in_results_with_their_reason(store):
    store.write_cell("r1", CELL, status="skipped", error="format 'x' is not implemented")
    assert store.con.execute("SELECT status, error, batch_size FROM results").fetchall() == [
        ("skipped", "format 'x' is not implemented", None)]


def test_pareto_keeps_only_undominated_cells(store):
    for method, p50, acc in (("a", 1.0, 0.90), ("b", 2.0, 0.95), ("c", 3.0, 0.94)):
        cell = Cell("m", method, "onnx", "intel-cpu")
        store.write_cell("r1", cell, status="ok", measurements=[
            measurement(1) | {"latency_p50_ms": p50, "accuracy_top1": acc, "quality": acc,
                               "quality_metric": "top1"}])
    names = store.con.execute("SELECT method FROM pareto ORDER BY method").fetchall()
    assert names == [("a",), ("b",)]


def test_read_only_open_of_a_missing_database_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no results database"):
        open_read_only(tmp_path / "nope.duckdb")


def test_parity_stored_as_passed_without_a_measurement_is_corrected(tmp_path):
    """Before v6 a parity no device could measure was stored as ok / not suspect, with a
    'skipped' note; opening such a database turns it into not measured."""
    from harness.results.store import migrate

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                "applied_at TIMESTAMP, description VARCHAR)")
    from harness.results import schema
    for version, _, statements in schema.MIGRATIONS[:5]:
        for sql in statements:
            con.execute(sql)
        con.execute("INSERT INTO schema_version VALUES (?, now(), 'old')", [version])
    con.execute("INSERT INTO variants (variant_id, parity, suspect) VALUES "
                "('trt', '{\"ok\": true, \"suspect\": false, \"skipped\": \"no nvidia-gpu "
                "device on the build host\"}', false), "
                "('ort', '{\"ok\": true, \"suspect\": false, \"cosine_min\": 1.0}', false)")
    migrate(con)
    rows = con.execute("SELECT variant_id, suspect, parity->>'$.ok', parity->>'$.reason' "
                       "FROM variants ORDER BY 1").fetchall()
    assert rows == [("ort", False, "true", None),
                    ("trt", None, None, "no nvidia-gpu device on the build host")]
    con.close()


def test_rows_per_shape_and_their_metrics_land_in_the_long_table(store):
    cell = Cell("encoder", "fp32", "onnx", "intel-cpu")
    rows = [measurement(b) | {"shape": s, "quality": 0.99, "quality_metric": "cosine_min",
                              "metrics": {"cosine_min": 0.99, "out0_sqnr_db": 31.5,
                                          "samples": 32, "flag": True}}
            for s in ("seq=32", "seq=128") for b in (1, 8)]
    store.write_cell("r1", cell, status="ok", measurements=rows)
    got = store.con.execute("SELECT shape, batch_size, quality_metric FROM results "
                            "ORDER BY shape, batch_size").fetchall()
    assert got == [("seq=128", 1, "cosine_min"), ("seq=128", 8, "cosine_min"),
                   ("seq=32", 1, "cosine_min"), ("seq=32", 8, "cosine_min")]
    names = store.con.execute("SELECT DISTINCT name FROM metrics ORDER BY 1").fetchall()
    assert names == [("cosine_min",), ("out0_sqnr_db",), ("samples",)]  # numbers only
    assert store.con.execute("SELECT count(*) FROM metrics").fetchone()[0] == 12
    samples = store.con.execute("SELECT shape, count(*) FROM latency_samples GROUP BY 1 "
                                "ORDER BY 1").fetchall()
    assert samples == [("seq=128", 2000), ("seq=32", 2000)]


def test_a_cell_keeps_its_build_and_measurement_times_and_the_run_its_cluster_start(store):
    """benchmarks/sweep_time.py reads where a sweep's time went from these."""
    store.cluster_ready("r1")
    store.write_cell("r1", CELL, status="ok", measurements=[measurement(1)],
                     build_wall_s=12.5, measure_wall_s=3.25,
                     measure_phases={"load": 0.5, "timed": 2.0, "other": 0.75})
    store.write_cell("r1", Cell("m", "fp32", "onnx", "arm-edge"), status="unavailable",
                     error="no agent")
    got = store.con.execute("SELECT cell_id, build_wall_s, measure_wall_s, "
                            "measure_phases->>'timed' FROM cells ORDER BY cell_id").fetchall()
    assert got == [("m/fp32/onnx/arm-edge", None, None, None),
                   ("m/fp32/onnx/intel-cpu", 12.5, 3.25, "2.0")]
    ready, started = store.con.execute("SELECT cluster_ready_at, started_at FROM runs "
                                       "WHERE run_id = 'r1'").fetchone()
    assert ready >= started

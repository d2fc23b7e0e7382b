"""Cells measured on an emulated device (an agent advertising a kind it lacks, a process
under qemu) are stored and shown as such, and left out of best-variant picks and regression
gates unless asked for: their timings are the emulating host's."""

import duckdb
import pytest

from harness.matrix.expand import Cell
from harness.results import compare, history
from harness.results.recommend import recommend
from harness.results.report import write_report
from harness.results.store import Store
from harness.results.summary import best_rows
from tests.harness.results.test_report import manifest, measurement


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "r.duckdb"
    s = Store(path)
    s.write_device("native", {"kind": "intel-cpu", "host": "box", "name": "cpu"}, {})
    s.write_device("qemu", {"kind": "arm-edge", "host": "box", "name": "4x ARM Neoverse-N1",
                            "emulated": True, "emulator": "qemu-user 7.2.22"}, {})
    s.write_variant(manifest("v1", "fp32", "onnx", [{"kind": "baseline"}]))
    s.write_variant(manifest("v2", "int8", "onnx", [{"kind": "quantize", "mode": "static"}],
                             precision="int8"))
    for run in ("r1", "r2"):
        s.start_run({"run_id": run, "matrix_name": "t"})
        for device_id, kind, fast in (("native", "intel-cpu", 1.0), ("qemu", "arm-edge", 0.1)):
            for method, variant, p50 in (("fp32", "v1", 2.0), ("int8", "v2", 1.5)):
                s.write_cell(run, Cell("m", method, "onnx", kind), status="ok",
                             variant_id=variant, device_id=device_id,
                             measurements=[measurement(1, p50 * fast, 0.98)])
        s.finish_run(run, "ok")
    s.close()
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


def test_the_results_view_and_the_device_say_emulated(db):
    rows = db.execute("SELECT device, bool_and(emulated) FROM results GROUP BY 1 "
                      "ORDER BY 1").fetchall()
    assert rows == [("arm-edge", True), ("intel-cpu", False)]
    runtimes = db.execute("SELECT runtimes->>'emulator' FROM devices WHERE emulated")
    assert runtimes.fetchone()[0] == "qemu-user 7.2.22"


def test_best_variant_picks_leave_emulated_cells_out_unless_asked(db):
    assert {r["device"] for r in recommend(db, run_id="r2")} == {"intel-cpu"}
    assert {r["device"] for r in recommend(db, run_id="r2", include_emulated=True)} == {
        "intel-cpu", "arm-edge"}
    assert {row[1] for row in best_rows(db, "r2", ["fp32"])} == {"intel-cpu"}


def test_gates_leave_emulated_cells_out_unless_asked(db):
    assert {key[3] for key in compare.load_run(db, "r2")} == {"intel-cpu"}
    assert {key[3] for key in compare.load_run(db, "r2", include_emulated=True)} == {
        "intel-cpu", "arm-edge"}
    assert {h.key[3] for h in history.load(db, ["r1", "r2"])} == {"intel-cpu"}
    assert {h.key[3] for h in history.load(db, ["r1", "r2"], include_emulated=True)} == {
        "intel-cpu", "arm-edge"}


def test_the_report_marks_emulated_rows_and_devices(db, tmp_path):
    html = write_report(db, "r2", tmp_path / "r.html").read_text()
    assert html.count('<span class="tag warn">emulated</span>') == 2  # the two arm-edge rows
    assert "(emulated: its timings are the host&#x27;s" in html

import base64
import re

import duckdb
import numpy as np
import pytest

from harness.results import plots
from harness.errors import InputError
from harness.results.report import load_run, write_report
from harness.results.summary import baseline_methods
from harness.matrix.expand import Cell
from harness.results.store import Store

PNG = b"\x89PNG\r\n\x1a\n"
SKIP_REASON = "format 'torch' has no int8 realisation in this version yet"
FAILED_ERROR = 'Traceback:\n  File "<module>", line 1\nRuntimeError: shape [1] & [8] mismatch'


def manifest(variant_id, method, fmt, config, precision="fp32", size=1_000_000,
             parity=None):
    return {"variant_id": variant_id, "model": "m", "method": method,
            "method_config": config, "format": fmt, "precision": precision,
            "runtime": "onnxruntime", "artifact_path": f"/x/{variant_id}", "sha256": "ab",
            "size_bytes": size, "build_seconds": 1.0,
            "parity": parity or {"ok": True, "suspect": False},
            "toolchain": {"torch": "2.14.1", "onnxruntime": "1.32.0", "format_options": {}}}


def measurement(batch, p50, acc, cv=0.02, labelled=True, seed=0, noisy=None):
    samples = np.random.default_rng(seed).lognormal(np.log(p50), 0.05, 200)
    row = {"batch_size": batch, "threads": 1, "precision": "fp32", "latency_p50_ms": p50,
           "latency_p99_ms": p50 * 1.3, "latency_cv": cv, "throughput_ips": batch * 1e3 / p50,
           # the worker's flag (CV above the matrix's noisy_cv, 0.1 by default)
           "latency_noisy": cv > 0.1 if noisy is None else noisy,
           "peak_rss_mb": 100.0, "stop_reason": "ci_target", "iterations": 200,
           "fidelity_top1_agreement": acc, "samples_ms": samples.tolist()}
    if labelled:
        row |= {"accuracy_top1": acc, "reference_top1": 0.98, "quality": acc,
                "quality_metric": "top1", "reference_quality": 0.98}
    else:  # what the recorder stores without labels: a fidelity cosine and its threshold
        row |= {"fidelity_cosine_min": acc, "quality": acc,
                "quality_metric": "fidelity_cosine_min", "quality_threshold": 0.9}
    return row


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "r.duckdb"
    s = Store(path)
    s.start_run({"run_id": "old", "matrix_name": "t"})
    s.finish_run("old", "ok")
    s.start_run({"run_id": "r1", "matrix_name": "t", "matrix_yaml": "name: t\n# <yaml>",
                 "host": "box", "tag": "nightly"})
    s.write_device("d1", {"kind": "intel-cpu", "host": "box", "name": "cpu"},
                   {"runtime": "onnxruntime"})
    s.write_variant(manifest("v1", "fp32", "onnx", [{"kind": "baseline"}]))
    s.write_variant(manifest("v2", "int8", "onnx", [{"kind": "quantize", "mode": "static"}],
                             precision="int8", size=300_000,
                             parity={"ok": None, "suspect": None, "measured": False,
                                     "reason": "no device here"}))
    s.write_cell("r1", Cell("m", "fp32", "onnx", "intel-cpu"), status="ok", variant_id="v1",
                 device_id="d1", measurements=[measurement(1, 2.0, 0.98),
                                               measurement(8, 12.0, 0.98, seed=1)])
    s.write_cell("r1", Cell("m", "int8", "onnx", "intel-cpu"), status="ok", variant_id="v2",
                 device_id="d1", measurements=[measurement(1, 1.0, 0.975, cv=0.3, seed=2),
                                               # CV 0.25 under a matrix's noisy_cv 0.5
                                               measurement(8, 6.0, 0.975, seed=3, cv=0.25,
                                                           noisy=False)])
    s.write_cell("r1", Cell("m", "int8", "torch", "intel-cpu"), status="skipped",
                 error=SKIP_REASON)
    s.write_cell("r1", Cell("m", "fp32", "torch", "intel-cpu"), status="failed",
                 error=FAILED_ERROR, device_id="d1")
    s.finish_run("r1", "failed")
    s.close()
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


def test_html_report_is_self_contained_with_four_decodable_plots(db, tmp_path):
    out = write_report(db, None, tmp_path / "sub" / "report.html")
    html = out.read_text()
    assert "r1" in html and "nightly" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html)
    assert "<script" not in html
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 4
    assert all(base64.b64decode(i).startswith(PNG) for i in images)


def test_html_lists_problem_cells_with_their_text_escaped(db, tmp_path):
    html = write_report(db, "r1", tmp_path / "r.html").read_text()
    assert "format &#x27;torch&#x27; has no int8 realisation" in html
    assert "&lt;module&gt;" in html and "[1] &amp; [8] mismatch" in html
    assert "<module>" not in html and "<yaml>" not in html  # the matrix YAML too
    assert "noisy" in html  # the int8 cell at batch 1 has CV 0.3


def test_noisy_is_the_stored_flag_and_unchecked_parity_is_said(db, tmp_path):
    """The worker flags noise against the matrix's measure.noisy_cv: the report shows that
    flag, not its own threshold; a parity the build host could not measure is 'not
    checked', never passed."""
    html = write_report(db, "r1", tmp_path / "r.html").read_text()
    assert "1 noisy" in html   # batch 1 (flagged), not batch 8 (CV 0.25, not flagged)
    assert html.count(">noisy</span>") == 1
    assert html.count("parity not checked") == 3  # int8: its two rows and the best table
    rows = db.execute("SELECT method, parity_status FROM results WHERE status = 'ok' "
                      "GROUP BY ALL ORDER BY 1").fetchall()
    assert rows == [("fp32", "passed"), ("int8", "not checked")]


def test_markdown_has_the_best_variant_table_and_no_images(db, tmp_path):
    md = write_report(db, "r1", tmp_path / "r.md", fmt="md").read_text()
    assert "| model | device | shape | method | format |" in md
    # int8 loses 0.5 point of top-1 (within the 1-point budget) and is twice as fast.
    assert re.search(r"\| m \| intel-cpu \| - \| int8 \| onnx \| .* \| 2\.00x \|", md)
    # A traceback is summarised by its last line, the exception.
    assert "failed** `m/fp32/torch/intel-cpu`: RuntimeError: shape [1] & [8] mismatch" in md
    assert "data:image" not in md


def test_unknown_run_names_the_run_and_lists_recent_ones(db, tmp_path):
    with pytest.raises(InputError, match=r"unknown run 'nope'.*r1, old"):
        write_report(db, "nope", tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_latest_run_and_baselines_come_from_the_database(db):
    assert load_run(db, None)["run_id"] == "r1"
    assert baseline_methods(db, "r1") == ["fp32"]


def test_an_unknown_format_is_an_input_error(db, tmp_path):
    with pytest.raises(InputError, match="html, md"):
        write_report(db, "r1", tmp_path / "r.pdf", fmt="pdf")


ROW = {"model": "m", "method": "fp32", "format": "onnx", "device": "intel-cpu",
       "batch_size": 1, "status": "ok", "latency_p50_ms": 2.0, "size_bytes": 1_000_000,
       "accuracy_top1": 0.9, "fidelity_top1_agreement": 1.0}
UNLABELLED = [ROW | {"accuracy_top1": None, "method": m, "latency_p50_ms": p, "size_bytes": s,
                     "fidelity_top1_agreement": f}
              for m, p, s, f in (("fp32", 30.0, 4e7, 1.0), ("int8", 20.0, 1e7, 0.9))]


@pytest.mark.parametrize("build", [
    lambda: plots.pareto_plot([ROW]),
    lambda: plots.size_plot([ROW]),
    lambda: plots.speedup_heatmap([ROW], ["fp32"]),
    lambda: plots.latency_distributions([ROW | {"samples": [1.0, 2.0, 3.0]}]),
    lambda: plots.pareto_plot(UNLABELLED),
    lambda: plots.size_plot(UNLABELLED),
    lambda: plots.speedup_heatmap(UNLABELLED, ["fp32"]),
    lambda: plots.speedup_heatmap(UNLABELLED, []),          # no baseline method
    lambda: plots.speedup_heatmap([ROW | {"method": "int8"}], ["fp32"]),  # baseline not ok
    lambda: plots.pareto_plot([]),
    lambda: plots.size_plot([ROW | {"status": "failed", "latency_p50_ms": None}]),
    lambda: plots.latency_distributions([]),
], ids=["pareto-one", "size-one", "speedup-one", "dist-one", "pareto-unlabelled",
        "size-unlabelled", "speedup-unlabelled", "speedup-no-baseline",
        "speedup-baseline-missing", "pareto-empty", "size-no-ok", "dist-empty"])
def test_plots_return_png_bytes_in_edge_cases(build):
    assert build().startswith(PNG)


def test_speedup_is_the_geometric_mean_over_models_of_baseline_over_cell():
    rows = [ROW | {"model": m, "method": meth, "latency_p50_ms": p}
            for m, meth, p in (("a", "fp32", 4.0), ("a", "int8", 1.0),
                               ("b", "fp32", 1.0), ("b", "int8", 1.0))]
    table = plots.speedup_table(rows, ["fp32"])
    assert table[("intel-cpu", 1)][("int8", "onnx")] == pytest.approx(2.0)  # sqrt(4 * 1)
    assert table[("intel-cpu", 1)][("fp32", "onnx")] == pytest.approx(1.0)
    assert plots.speedup_table(rows, []) == {}


def test_pareto_front_keeps_only_undominated_points():
    points = [(1.0, 0.90), (2.0, 0.95), (3.0, 0.94), (2.0, 0.80)]
    assert plots.pareto_front(points) == [0, 1]

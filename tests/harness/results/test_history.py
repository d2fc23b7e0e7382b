"""`harness history` on a database of recorded runs: verdicts per cell, what changed at a
step, --regressed, unstable cells listed apart, and the CLI's errors."""

import json
from datetime import datetime, timedelta

import numpy as np
import pytest

from harness.matrix.expand import Cell
from harness.results.store import Store
from tests.conftest import run_cli

RUNS = 8


def _variant(variant_id, method, digest, ort="1.32.0"):
    return {"variant_id": variant_id, "model": "m", "method": method,
            "method_config": [{"kind": "baseline" if method == "fp32" else "quantize"}],
            "format": "onnx", "precision": "fp32", "runtime": "onnxruntime",
            "artifact_path": "/x", "sha256": digest, "size_bytes": 1000, "build_seconds": 1.0,
            "parity": {"ok": True, "suspect": False}, "toolchain": {"onnxruntime": ort}}


def _row(p50, spread=0.01):
    samples = np.full(50, p50)
    return {"batch_size": 1, "threads": 1, "precision": "fp32", "latency_p50_ms": p50,
            "latency_p50_ci_low_ms": p50 * (1 - spread), "latency_p50_ci_high_ms":
            p50 * (1 + spread), "iterations": 50, "samples_ms": samples.tolist(),
            "quality": 0.98, "quality_metric": "top1", "peak_rss_mb": 100.0,
            "throughput_ips": 1000 / p50}


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """8 nightly runs: fp32 steady; int8 steps 30% slower at run 5 with a new onnxruntime;
    noisy jumps around by 40%; one run is not nightly."""
    path = tmp_path_factory.mktemp("history") / "h.duckdb"
    store = Store(path)
    rng = np.random.default_rng(0)
    start = datetime(2026, 11, 1, 2, 0)
    for k in range(RUNS):
        run_id = f"nightly-{k}"
        store.start_run({"run_id": run_id, "matrix_name": "nightly", "tag": "nightly",
                         "git_sha": "aaaa1111" if k < 5 else "bbbb2222", "host": "vm",
                         "harness_version": "0.1.0"})
        store.con.execute("UPDATE runs SET started_at = ? WHERE run_id = ?",
                          [start + timedelta(days=k), run_id])
        new = k >= 5
        store.write_variant(_variant("v-fp32", "fp32", "d-fp32"))
        int8_id = "v-int8-b" if new else "v-int8-a"
        store.write_variant(_variant(int8_id, "int8", "d-int8-b" if new else "d-int8-a",
                                     ort="1.33.0" if new else "1.32.0"))
        store.write_variant(_variant("v-noisy", "noisy", "d-noisy"))
        fp32 = 1.0 * (1 + rng.normal(0, 0.005))
        int8 = (0.65 if new else 0.5) * (1 + rng.normal(0, 0.005))
        noisy = 2.0 * (1 + 0.4 * (k % 2) + rng.normal(0, 0.05))
        for method, variant, p50 in (("fp32", "v-fp32", fp32), ("int8", int8_id, int8),
                                     ("noisy", "v-noisy", noisy)):
            store.write_cell(run_id, Cell("m", method, "onnx", "intel-cpu"), status="ok",
                             variant_id=variant, measurements=[_row(p50)])
        store.finish_run(run_id, "ok")
    store.start_run({"run_id": "adhoc", "matrix_name": "nightly", "git_sha": "cccc"})
    store.write_cell("adhoc", Cell("m", "fp32", "onnx", "intel-cpu"), status="ok",
                     variant_id="v-fp32", measurements=[_row(5.0)])
    store.finish_run("adhoc", "ok")
    store.close()
    return path


def _history(db, *args):
    out = run_cli("history", "--db", str(db), *args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_step_is_found_at_its_run_with_what_changed(db):
    cells = {(c["method"]): c for c in json.loads(_history(db, "--tag", "nightly", "--json"))}
    assert cells["fp32"]["verdict"] == "stable" and not cells["fp32"]["regressed"]
    int8 = cells["int8"]
    assert int8["verdict"] == "step" and int8["regressed"]
    (change,) = int8["changes"]
    assert change["run"] == "nightly-5" and change["previous_run"] == "nightly-4"
    assert change["change"] == pytest.approx(0.30, abs=0.03) and change["worse"]
    changed = "; ".join(change["what_changed"])
    assert "variant v-int8-a -> v-int8-b" in changed
    assert "onnxruntime 1.32.0 -> 1.33.0" in changed and "git aaaa1111 -> bbbb2222" in changed
    assert change["repro"].startswith("harness compare nightly-4 nightly-5 --confirm --db ")
    assert cells["noisy"]["verdict"] == "unstable" and not cells["noisy"]["regressed"]


def test_regressed_names_only_the_cell_that_stepped_and_lists_nothing_else(db):
    cells = json.loads(_history(db, "--tag", "nightly", "--regressed", "--json"))
    assert [c["method"] for c in cells] == ["int8"]
    text = _history(db, "--tag", "nightly", "--regressed")
    assert "m/int8/onnx/intel-cpu" in text and "worse +30% at nightly-5" in text
    assert "repro: harness compare nightly-4 nightly-5 --confirm" in text
    assert "m/fp32" not in text and "m/noisy" not in text


def test_unstable_cells_are_listed_apart(db):
    text = _history(db, "--tag", "nightly")
    judged, unstable = text.split("unstable (1)")
    assert "m/noisy/onnx/intel-cpu" in unstable and "m/noisy" not in judged
    assert "m/fp32/onnx/intel-cpu" in judged


def test_the_tag_and_filters_choose_the_runs_and_cells(db):
    everything = json.loads(_history(db, "--json", "--method", "fp32"))
    assert everything[0]["runs"][-1] == "adhoc"  # untagged: every finished run
    only = json.loads(_history(db, "--tag", "nightly", "--last", "3", "--format", "onnx",
                               "--method", "fp32", "--json"))
    assert only[0]["runs"] == ["nightly-5", "nightly-6", "nightly-7"]
    assert only[0]["verdict"] == "too short"
    quality = json.loads(_history(db, "--tag", "nightly", "--metric", "quality", "--json"))
    assert {c["verdict"] for c in quality} == {"stable"}


def test_an_unknown_tag_is_a_clear_error(db):
    out = run_cli("history", "--db", str(db), "--tag", "nope")
    assert out.returncode == 2 and "no finished run tagged 'nope'" in out.stderr
    assert "Traceback" not in out.stderr


def test_compare_reads_a_finding_against_the_cells_history(db):
    out = run_cli("compare", "nightly-4", "nightly-5", "--db", str(db), "--history", "5",
                  "--format", "json")
    assert out.returncode == 1, out.stdout + out.stderr  # int8 regressed
    report = json.loads(out.stdout)
    findings = {f["method"]: f for f in report["regressions"] + report["improvements"]
                if f["kind"] == "latency"}
    assert "history: a new step: +30% from the level of the earlier runs" in \
        findings["int8"]["note"]
    # the noisy cell's 40% swing is flagged by the two runs alone; its history says why
    assert "history: the cell's history is unstable" in findings["noisy"]["note"]
    out = run_cli("compare", "nightly-6", "nightly-7", "--db", str(db), "--history", "8")
    assert "m/int8" not in out.stdout and "m/fp32" not in out.stdout
    # the repro line: the command that re-measures the findings side by side
    assert f"`harness compare nightly-6 nightly-7 --confirm --db {db}`" in out.stdout


def test_history_readings_of_a_candidate():
    from harness.results.history_gate import classify

    steady = [1.0, 1.01, 0.99, 1.0, 1.0]
    assert classify(steady, 1.3, 0.1).startswith("a new step: +30%")
    assert classify(steady, 1.02, 0.1).startswith("inside the cell's usual spread")
    assert classify([1.0, 1.0], 1.3, 0.1).startswith("history too short")
    drifting = [1.0, 1.04, 1.08, 1.12, 1.17, 1.22, 1.27]
    assert classify(drifting, 1.33, 0.1).startswith("continues a drift (worse by")
    assert "unstable" in classify([1.0, 1.5, 0.9, 1.6, 1.0, 1.4], 2.0, 0.1)


def test_the_history_page_marks_the_step_and_lists_unstable_cells_apart(db, tmp_path):
    out = run_cli("report", "--history", "--tag", "nightly", "--db", str(db), "--out",
                  str(tmp_path / "h.html"))
    assert out.returncode == 0, out.stderr
    html = (tmp_path / "h.html").read_text()
    assert "<b>1 cell(s) regressed</b>" in html and "m/int8/onnx/intel-cpu" in html
    assert '<img alt="history of m" src="data:image/png;base64,' in html
    assert "onnxruntime 1.32.0 -&gt; 1.33.0" in html  # escaped, in the change table
    unstable = html.split("Unstable (too noisy to call a step in)")[1]
    assert "m/noisy/onnx/intel-cpu" in unstable
    assert "http" not in html.split("<body>")[1]  # self-contained

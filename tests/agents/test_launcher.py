"""The worker in a fresh process, without Ray or DuckDB: a real ONNX model measured, and
every way a cell can go wrong reported as that cell's status."""

import hashlib
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from agents.launcher import run_cell

MEASURE = {"batch_sizes": [1, 4], "threads": 1, "warmup_s": 0.05, "min_iterations": 20,
           "min_seconds": 0.1, "max_seconds": 1.0, "ci_rel_width": 0.05, "accuracy": True,
           "timeout_s": 120}


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def cell(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["logits"])], "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        [onnx.numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    artifact = tmp_path / "model.onnx"
    onnx.save(model, artifact)
    x = rng.standard_normal((40, 8)).astype(np.float32)
    labels = (x @ w).argmax(1)
    labels[:4] = (labels[:4] + 1) % 3  # 10% wrong labels: accuracy must be exactly 0.9
    pack = tmp_path / "pack.npz"
    np.savez(pack, test_x=x, test_y=labels, reference=x @ w)
    return {"cell_id": "lin/fp32/onnx/intel-cpu", "device": "intel-cpu",
            "runtime": "onnxruntime", "precision": "fp32",
            "artifact": {"path": str(artifact), "sha256": _sha(artifact)},
            "eval_pack": {"path": str(pack), "sha256": _sha(pack)}, "measure": MEASURE}


def test_a_real_onnx_cell_is_measured(cell):
    result = run_cell(cell, timeout_s=120)
    assert result["status"] == "ok", result.get("error")
    rows = {r["batch_size"]: r for r in result["measurements"]}
    assert set(rows) == {1, 4}
    for batch_size, row in rows.items():
        assert row["iterations"] == len(row["samples_ms"]) >= 20
        assert 0 < row["latency_p50_ms"] <= row["latency_p99_ms"]
        assert row["accuracy_top1"] == pytest.approx(0.9)
        assert row["fidelity_top1_agreement"] == 1.0
        assert row["fidelity_max_abs_err"] < 1e-4
        assert row["peak_rss_mb"] >= row["rss_before_load_mb"] > 0
        assert row["precision"] == "fp32" and row["threads"] == 1
        assert row["stop_reason"] in ("ci_target", "max_seconds")
        assert row["energy_sensor"] is not None or row["energy_note"]
        # the launcher's background sample of the worker's tree, beside the exact VmHWM
        assert row["peak_rss_sampled_mb"] > 0 and row["processes"] == 1
    assert result["runtime"]["runtime"] == "onnxruntime"
    assert result["device"]["kind"] == "intel-cpu"


def test_several_processes_are_pooled_with_a_ci_that_spans_them(cell):
    cell["measure"] = MEASURE | {"processes": 3, "batch_sizes": [1]}
    result = run_cell(cell, timeout_s=120)
    assert result["status"] == "ok", result.get("error")
    [row] = result["measurements"]
    assert row["processes"] == 3 and len(row["latency_process_p50s_ms"]) == 3
    assert sorted(set(row["samples_process"])) == [0, 1, 2]
    assert row["iterations"] == len(row["samples_ms"]) == len(row["samples_process"])
    assert row["latency_p50_ms"] == pytest.approx(np.median(row["samples_ms"]))
    low, high = row["latency_p50_ci_low_ms"], row["latency_p50_ci_high_ms"]
    assert low <= min(row["latency_process_p50s_ms"]) and high >= max(row["latency_process_p50s_ms"])
    assert row["accuracy_top1"] == pytest.approx(0.9)  # from the first process


def test_a_failure_in_a_later_process_fails_the_cell_naming_it(cell, monkeypatch):
    calls = []
    from agents import launcher

    real = launcher._run_worker

    def second_breaks(this, timeout_s):
        calls.append(this["measure"]["accuracy"])
        if len(calls) == 2:
            this = this | {"artifact": this["artifact"] | {"sha256": "0" * 64}}
        return real(this, timeout_s)

    monkeypatch.setattr(launcher, "_run_worker", second_breaks)
    cell["measure"] = MEASURE | {"processes": 3}
    result = run_cell(cell, timeout_s=120)
    assert result["status"] == "failed" and result["error"].startswith("process 2 of 3:")
    assert calls == [True, False]  # accuracy once; nothing after the failure


def test_an_artifact_that_does_not_match_its_hash_is_refused(cell, tmp_path):
    with open(cell["artifact"]["path"], "ab") as f:
        f.write(b"tampered")
    result = run_cell(cell, timeout_s=120)
    assert result["status"] == "failed" and "does not match its hash" in result["error"]


def test_a_missing_artifact_fails_the_cell(cell):
    cell["artifact"]["path"] = "/nonexistent/model.onnx"
    result = run_cell(cell, timeout_s=120)
    assert result["status"] == "failed" and "not found" in result["error"]


def test_a_worker_that_outlives_its_timeout_is_killed(cell):
    cell["measure"] = MEASURE | {"min_seconds": 60, "max_seconds": 60, "ci_rel_width": 1e-9}
    result = run_cell(cell, timeout_s=3)
    assert result["status"] == "timeout" and "killed" in result["error"]


def test_a_worker_killed_by_a_signal_is_reported(cell, monkeypatch):
    # A runtime that segfaults: PYTHONSTARTUP does not apply to -m, so inject through
    # sitecustomize on PYTHONPATH, which every fresh interpreter imports.
    site = cell["artifact"]["path"].rsplit("/", 1)[0] + "/crash"
    import os
    os.makedirs(site, exist_ok=True)
    with open(f"{site}/sitecustomize.py", "w") as f:
        f.write("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    monkeypatch.setenv("PYTHONPATH", site)
    result = run_cell(cell, timeout_s=60)
    assert result["status"] == "failed" and "SIGSEGV" in result["error"]


def test_worker_module_imports_neither_ray_nor_duckdb():
    import subprocess
    code = ("import sys, agents.worker, agents.launcher, agents.runtimes.onnxruntime_rt; "
            "bad = [m for m in ('ray', 'duckdb') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_a_worker_over_its_memory_limit_is_killed_and_recorded(cell):
    cell["measure"] = MEASURE | {"memory_limit_mb": 40}  # the interpreter alone needs more
    result = run_cell(cell, timeout_s=120)
    assert result["status"] == "failed"
    assert "exceeded the memory limit of 40 MB" in result["error"]


def test_an_output_of_the_wrong_shape_fails_the_cell_before_timing(cell, tmp_path):
    """A runtime that returns an empty or mis-shaped output (it would time as fast) fails
    the cell: here the eval pack's reference says 5 outputs per sample, the model gives 3."""
    x = np.load(cell["eval_pack"]["path"])["test_x"]
    pack = tmp_path / "other.npz"
    np.savez(pack, test_x=x, reference=np.zeros((len(x), 5), np.float32))
    result = run_cell(cell | {"eval_pack": {"path": str(pack), "sha256": _sha(pack)}}, 60)
    assert result["status"] == "failed"
    assert "output of shape [1, 3] for one sample; the fp32 source gives [1, 5]" in \
        result["error"]

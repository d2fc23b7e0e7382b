"""The worker in a fresh process, without Ray or DuckDB: a real ONNX model measured, and
every way a cell can go wrong reported as that cell's status."""

import dataclasses
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from agents.cell import CellPayload, FileRef
from agents.launcher import run_cell
from tests.packs import payload, write_test_pack

MEASURE = {"batch_sizes": [1, 4], "threads": 1, "warmup_s": 0.05, "min_iterations": 20,
           "min_seconds": 0.1, "max_seconds": 1.0, "ci_rel_width": 0.05, "accuracy": True,
           "timeout_s": 120}


@pytest.fixture
def cell(tmp_path) -> CellPayload:
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
    pack = write_test_pack(tmp_path / "pack.npz", {"input": x}, [x @ w], labels)
    return payload(artifact, pack, MEASURE, cell_id="lin/fp32/onnx/intel-cpu")


def test_a_real_onnx_cell_is_measured(cell):
    result = run_cell(cell, timeout_s=120)
    assert result.status == "ok", result.error
    rows = {r["batch_size"]: r for r in result.measurements}
    assert set(rows) == {1, 4}
    for batch_size, row in rows.items():
        assert row["iterations"] == len(row["samples_ms"]) >= 20
        assert 0 < row["latency_p50_ms"] <= row["latency_p99_ms"]
        assert row["accuracy_top1"] == pytest.approx(0.9)
        assert row["fidelity_top1_agreement"] == 1.0
        assert row["fidelity_max_abs_err"] < 1e-4
        assert row["metrics"]["out0_cosine_min"] == pytest.approx(1.0, abs=1e-6)
        assert row["peak_rss_mb"] >= row["rss_before_load_mb"] > 0
        assert row["precision"] == "fp32" and row["threads"] == 1 and row["shape"] == ""
        assert row["stop_reason"] in ("ci_target", "max_seconds")
        assert row["energy_sensor"] is not None or row["energy_note"]
        # the launcher's background sample of the worker's tree, beside the exact VmHWM
        assert row["peak_rss_sampled_mb"] > 0 and row["processes"] == 1
    assert result.runtime["runtime"] == "onnxruntime"
    assert result.device["kind"] == "intel-cpu"
    # where the wall time went: every phase the worker went through, and the rest
    phases = result.phases
    assert {"start", "setup", "load", "quality", "timed", "other"} <= set(phases)
    assert "profile" not in phases and "scenarios" not in phases  # not asked for
    assert all(v >= 0 for v in phases.values())
    assert sum(phases.values()) == pytest.approx(result.wall_s, abs=0.01)


def test_several_processes_are_pooled_with_a_ci_that_spans_them(cell):
    cell = cell.with_measure(processes=3, batch_sizes=[1])
    result = run_cell(cell, timeout_s=120)
    assert result.status == "ok", result.error
    [row] = result.measurements
    assert row["processes"] == 3 and len(row["latency_process_p50s_ms"]) == 3
    assert sorted(set(row["samples_process"])) == [0, 1, 2]
    assert row["iterations"] == len(row["samples_ms"]) == len(row["samples_process"])
    assert row["latency_p50_ms"] == pytest.approx(np.median(row["samples_ms"]))
    low, high = row["latency_p50_ci_low_ms"], row["latency_p50_ci_high_ms"]
    assert low <= min(row["latency_process_p50s_ms"]) and high >= max(row["latency_process_p50s_ms"])
    assert row["accuracy_top1"] == pytest.approx(0.9)  # from the first process
    assert result.phases["quality"] > 0 and result.phases["timed"] > 0
    assert sum(result.phases.values()) == pytest.approx(result.wall_s, abs=0.05)


def test_a_failure_in_a_later_process_fails_the_cell_naming_it(cell, monkeypatch):
    calls = []
    from agents import launcher

    real = launcher._run_worker

    def second_breaks(this, timeout_s, **kw):
        calls.append(this["measure"]["accuracy"])
        if len(calls) == 2:
            this = this | {"artifact": this["artifact"] | {"sha256": "0" * 64}}
        return real(this, timeout_s, **kw)

    monkeypatch.setattr(launcher, "_run_worker", second_breaks)
    result = run_cell(cell.with_measure(processes=3), timeout_s=120)
    assert result.status == "failed" and result.error.startswith("process 2 of 3:")
    assert calls == [True, False]  # accuracy once; nothing after the failure


def test_an_artifact_that_does_not_match_its_hash_is_refused(cell, tmp_path):
    with open(cell.artifact.path, "ab") as f:
        f.write(b"tampered")
    result = run_cell(cell, timeout_s=120)
    assert result.status == "failed" and "does not match its hash" in result.error


def test_a_missing_artifact_fails_the_cell(cell):
    missing = dataclasses.replace(cell, artifact=FileRef("/nonexistent/model.onnx", "0" * 64))
    result = run_cell(missing, timeout_s=120)
    assert result.status == "failed" and "not found" in result.error


def test_a_worker_that_outlives_its_timeout_is_killed(cell):
    slow = cell.with_measure(min_seconds=60, max_seconds=60, ci_rel_width=1e-9)
    result = run_cell(slow, timeout_s=3)
    assert result.status == "timeout" and "killed" in result.error


def test_a_worker_killed_by_a_signal_is_reported(cell, monkeypatch):
    # A runtime that segfaults: PYTHONSTARTUP does not apply to -m, so inject through
    # sitecustomize on PYTHONPATH, which every fresh interpreter imports.
    site = cell.artifact.path.rsplit("/", 1)[0] + "/crash"
    import os
    os.makedirs(site, exist_ok=True)
    with open(f"{site}/sitecustomize.py", "w") as f:
        f.write("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    monkeypatch.setenv("PYTHONPATH", site)
    result = run_cell(cell, timeout_s=60)
    assert result.status == "failed" and "SIGSEGV" in result.error


def test_worker_module_imports_neither_ray_nor_duckdb():
    import subprocess
    code = ("import sys, agents.worker, agents.launcher, agents.runtimes.onnxruntime_rt; "
            "bad = [m for m in ('ray', 'duckdb') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_a_worker_over_its_memory_limit_is_killed_and_recorded(cell):
    result = run_cell(cell.with_measure(memory_limit_mb=40), timeout_s=120)  # too little
    assert result.status == "failed"
    assert "exceeded the memory limit of 40 MB" in result.error


def test_an_output_of_the_wrong_shape_fails_the_cell_before_timing(cell, tmp_path):
    """A runtime that returns an empty or mis-shaped output (it would time as fast) fails
    the cell: here the eval pack's reference says 5 outputs per sample, the model gives 3."""
    from agents.evalpack import EvalPack

    x = EvalPack(cell.eval_pack.path).batch(0, 40)["input"]
    pack = write_test_pack(tmp_path / "other.npz", {"input": x},
                           [np.zeros((len(x), 5), np.float32)])
    from tests.packs import sha
    result = run_cell(dataclasses.replace(cell, eval_pack=FileRef(str(pack), sha(pack))), 60)
    assert result.status == "failed"
    assert "output 0 of shape [1, 3] for one sample; the fp32 source gives [5]" in result.error


def test_a_payload_of_another_version_is_refused(cell, tmp_path):
    from agents.worker import run_and_report
    import json

    data = cell.to_json() | {"version": 1}
    (tmp_path / "cell.json").write_text(json.dumps(data))
    code = run_and_report(lambda d: CellPayload.from_json(d).to_json(),
                          str(tmp_path / "cell.json"), str(tmp_path / "out.json"))
    out = json.loads((tmp_path / "out.json").read_text())
    assert code == 1 and "payload version 1" in out["error"]

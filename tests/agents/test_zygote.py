"""Cells' workers fork from their runtime's prestarted process, which has imported the
runtime; each is still its own process: a crash or a hang costs that cell only, and nothing
outlives the launcher."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import psutil
import pytest
import torch

import agents.launcher as launcher
from agents.faults import FAULT_ENV
from agents.launcher import run_cell
from tests.packs import payload, write_test_pack

MEASURE = {"batch_sizes": [1, 4], "threads": 1, "warmup_s": 0.05, "min_iterations": 20,
           "min_seconds": 0.1, "max_seconds": 1.0, "ci_rel_width": 0.05, "accuracy": True,
           "timeout_s": 120}
REPO = launcher.__file__.rsplit("/agents/", 1)[0]


@pytest.fixture(scope="module")
def torch_model(tmp_path_factory):
    """A linear classifier saved as a torch.export program with a dynamic batch, its eval
    pack and labels that make its top-1 exactly 0.9."""
    folder = tmp_path_factory.mktemp("torch-cell")
    torch.manual_seed(0)
    module = torch.nn.Linear(8, 3).eval()
    x = np.random.default_rng(0).standard_normal((40, 8)).astype(np.float32)
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(module, (torch.from_numpy(x[:2]),),
                                  dynamic_shapes=({0: batch},))
    torch.export.save(program, folder / "model.pt2")
    with torch.no_grad():
        logits = module(torch.from_numpy(x)).numpy()
    labels = logits.argmax(1)
    labels[:4] = (labels[:4] + 1) % 3
    pack = write_test_pack(folder / "pack.npz", {"input": x}, [logits], labels)
    # the same classifier as an ONNX graph (Gemm with the module's weights)
    weight, bias = (onnx.numpy_helper.from_array(t.detach().numpy(), name)
                    for t, name in ((module.weight, "W"), (module.bias, "B")))
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Gemm", ["input", "W", "B"], ["logits"], transB=1)], "lin",
        [onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["batch", 8])],
        [onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", 3])],
        [weight, bias])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]),
              folder / "model.onnx")
    return folder / "model.pt2", pack


def _cell(torch_model, name="lin"):
    artifact, pack = torch_model
    return payload(artifact, pack, MEASURE, runtime="torch",
                   cell_id=f"{name}/fp32/torch/intel-cpu")


def _server(runtime="torch"):
    return launcher._zygotes[runtime].proc


@pytest.fixture(autouse=True)
def no_prestarted_worker():
    yield
    launcher.close_prestarted_workers()


def test_torch_cells_fork_from_one_prestarted_worker(torch_model):
    first = run_cell(_cell(torch_model), timeout_s=120)
    server = _server().pid
    second = run_cell(_cell(torch_model, "lin2"), timeout_s=120)
    assert first.ok and second.ok, (first.error, second.error)
    assert _server().pid == server and _server().poll() is None
    for result in (first, second):
        assert [row["accuracy_top1"] for row in result.measurements] == [0.9, 0.9]
        assert result.runtime["runtime"] == "torch"
        assert set(result.phases) >= {"start", "setup", "load", "quality", "timed"}


def test_each_runtime_forks_from_its_own_prestarted_worker(torch_model):
    """An ONNX Runtime cell's worker comes from a server that imported ONNX Runtime, not
    torch: its memory figures hold its own runtime's imports only."""
    artifact, pack = torch_model
    onnx_cell = payload(artifact.with_name("model.onnx"), pack, MEASURE,
                        cell_id="lin/fp32/onnx/intel-cpu")
    results = [run_cell(cell, timeout_s=120) for cell in
               (onnx_cell, _cell(torch_model), onnx_cell)]
    assert all(r.ok for r in results), [r.error for r in results]
    assert [row["accuracy_top1"] for row in results[0].measurements] == [0.9, 0.9]
    assert set(launcher._zygotes) == {"onnxruntime", "torch"}
    assert _server("onnxruntime").pid != _server("torch").pid
    libraries = {runtime: {Path(m.path).name for m in
                           psutil.Process(_server(runtime).pid).memory_maps()}
                 for runtime in ("onnxruntime", "torch")}
    assert "libtorch_cpu.so" in libraries["torch"]
    assert "libtorch_cpu.so" not in libraries["onnxruntime"]
    assert any(name.startswith("onnxruntime_pybind11_state")
               for name in libraries["onnxruntime"])


def test_a_crash_in_a_forked_worker_costs_only_its_cell(torch_model, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, json.dumps({"bad/fp32/torch/intel-cpu": "segfault"}))
    crashed = run_cell(_cell(torch_model, "bad"), timeout_s=120)
    assert crashed.status == "failed" and "SIGSEGV" in crashed.error
    assert "injecting fault 'segfault'" in crashed.error  # the child's own log
    server = _server().pid
    after = run_cell(_cell(torch_model), timeout_s=120)
    assert after.ok and _server().pid == server


def test_a_hung_forked_worker_is_killed_at_its_timeout(torch_model, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, json.dumps({"hung/fp32/torch/intel-cpu": "hang"}))
    hung = run_cell(_cell(torch_model, "hung"), timeout_s=5)
    assert hung.status == "timeout" and "killed" in hung.error
    assert run_cell(_cell(torch_model), timeout_s=120).ok


def test_another_environment_gets_its_own_prestarted_worker(torch_model, monkeypatch):
    assert run_cell(_cell(torch_model), timeout_s=120).ok
    before = _server()
    monkeypatch.setenv("HARNESS_TEST_MARKER", "1")  # a variable a runtime could read
    assert run_cell(_cell(torch_model), timeout_s=120).ok
    assert _server().pid != before.pid and before.poll() is not None


def test_nothing_outlives_a_launcher_killed_mid_cell(torch_model, tmp_path):
    cell = _cell(torch_model, "hung")
    (tmp_path / "cell.json").write_text(json.dumps(cell.to_json()))
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {REPO!r})
        from agents.cell import CellPayload
        from agents.launcher import run_cell
        run_cell(CellPayload.from_json(json.load(open({str(tmp_path / "cell.json")!r}))), 600)
    """)
    env = {**__import__("os").environ, FAULT_ENV: json.dumps({cell.cell_id: "hang"})}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        launcher_process = psutil.Process(proc.pid)
        tree = []
        for _ in range(600):  # the server, then the worker it forked (seconds)
            tree = launcher_process.children(recursive=True)
            if len(tree) >= 2:
                break
            psutil.wait_procs([launcher_process], timeout=0.1)
        assert len(tree) >= 2, "the prestarted worker never forked the cell's worker"
    finally:
        proc.kill()
        proc.wait()
    gone, alive = psutil.wait_procs(tree, timeout=15)
    assert not alive, [p.cmdline() for p in alive]

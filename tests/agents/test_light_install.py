"""The agent install has no torch (pip install '.[agent]'): `import agents`, the device
report, `harness agent start`'s planning and the worker measuring an ONNX cell run with
torch (and every other full-install package) made unimportable, in a fresh process."""

import json
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

from agents.cell import BATCH_AXIS, CellPayload, FileRef, InputSpec
from agents.evalpack import write_pack
from harness.cli import FULL_INSTALL_MODULES
from harness.matrix.schema import MeasureSpec
from tests.conftest import REPO

# Runs first in the child: any import of a full-install-only package fails, as it would in
# an environment that never installed it.
BLOCK = f"""
import sys
BLOCKED = {sorted(FULL_INSTALL_MODULES)!r}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
        return None
sys.meta_path.insert(0, Block())
"""


def _child(code: str, *args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _cell(tmp_path) -> str:
    rng = np.random.default_rng(0)
    weight = helper.make_tensor("W", TensorProto.FLOAT, [16, 4],
                                rng.standard_normal(64).astype(np.float32))
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             ["batch", 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                             ["batch", 4])], [weight])
    model_path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(model_path))
    x = rng.standard_normal((32, 16)).astype(np.float32)
    reference = x @ onnx.numpy_helper.to_array(weight)
    pack = tmp_path / "pack.npz"
    write_pack(pack, task="classification", inputs=[InputSpec("x", "float32", (BATCH_AXIS, 16))],
               shapes=[{}], test_inputs=[{"x": x}], references=[[reference]],
               labels=reference.argmax(1), samples=32)
    sha = lambda p: __import__("hashlib").sha256(p.read_bytes()).hexdigest()  # noqa: E731
    cell = CellPayload(cell_id="light/fp32/onnx/intel-cpu", device="intel-cpu",
                       runtime="onnxruntime", precision="fp32",
                       artifact=FileRef(str(model_path), sha(model_path)),
                       eval_pack=FileRef(str(pack), sha(pack)),
                       measure=MeasureSpec(batch_sizes=[1], threads=1, warmup_s=0.01,
                                           min_iterations=10, min_seconds=0.05,
                                           max_seconds=0.2).model_dump())
    path = tmp_path / "cell.json"
    cell.write(path)
    return str(path)


def test_agents_and_the_device_report_need_no_full_install_package():
    out = _child("import agents, agents.worker, agents.launcher\n"
                 "from agents.devices import host_report\n"
                 "from harness.cluster.node import node_spec\n"
                 "report = host_report()\n"
                 "assert report['runtimes']['torch']['reason'], report['runtimes']['torch']\n"
                 "print(node_spec(report).kinds)\n"
                 "assert not [m for m in sys.modules if m.split('.')[0] in BLOCKED]\n")
    assert out.returncode == 0, out.stderr
    assert "torch-cuda" not in out.stderr


def test_the_worker_measures_an_onnx_cell_without_torch(tmp_path):
    cell = _cell(tmp_path)
    result = tmp_path / "result.json"
    out = _child("import runpy; sys.argv = ['agents.worker', sys.argv[1], '--out', "
                 "sys.argv[2]]\nrunpy.run_module('agents.worker', run_name='__main__')",
                 cell, str(result))
    assert out.returncode == 0, out.stderr
    data = json.loads(result.read_text())
    assert data["status"] == "ok", data.get("error")
    row = data["measurements"][0]
    assert row["accuracy_top1"] == 1.0 and row["iterations"] >= 10


def test_a_full_install_command_from_the_agent_install_says_so():
    out = _child("from harness.cli import main\nsys.exit(main(['sweep', 'matrix/smoke.yaml']))")
    assert out.returncode == 2, out.stderr
    assert "needs the full install" in out.stderr and "Traceback" not in out.stderr

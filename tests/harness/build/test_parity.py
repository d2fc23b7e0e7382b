"""Parity that could not be measured on the build host is stored as not measured."""

import numpy as np
import pytest

from agents.devices import detect_kinds
from harness.build.parity import check_parity
from harness.formats import FORMATS


@pytest.mark.skipif("nvidia-gpu" in detect_kinds(), reason="this host has an nvidia-gpu, "
                    "so TensorRT parity would be measured here")
def test_a_format_no_device_here_runs_is_not_measured_never_passed():
    plugin = FORMATS["tensorrt"]
    x = np.zeros((2, 1, 32, 32), np.float32)
    parity = check_parity("/nonexistent.engine", plugin, "fp32", x, np.zeros((2, 10)))
    assert parity["ok"] is None and parity["suspect"] is None
    assert parity["measured"] is False and "nvidia-gpu" in parity["reason"]


def near_flat_case(tmp_path, labelled: bool):
    """An ONNX identity over 10 logits, near-flat inputs, and a reference a hair away whose
    argmax differs for most samples: cosine ~1, top-1 agreement low."""
    import onnx
    from onnx import TensorProto, helper

    from agents.cell import InputSpec
    from agents.evalpack import write_pack

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 10])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = tmp_path / "identity.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), model)
    rng = np.random.default_rng(0)
    inputs = (1.0 + 1e-4 * rng.standard_normal((40, 10))).astype(np.float32)
    reference = (inputs + 2e-4 * rng.standard_normal((40, 10))).astype(np.float32)
    pack = tmp_path / "pack.npz"
    write_pack(pack, task="classification", inputs=[InputSpec("x", "float32", ("batch", 10))],
               shapes=[{}], test_inputs=[{"x": inputs}], references=[[reference]],
               labels=reference.argmax(1) if labelled else None, samples=40)
    return str(model), str(pack)


@pytest.mark.parametrize("labelled", [False, True])
def test_top1_agreement_gates_only_on_labelled_data(tmp_path, labelled):
    model, pack = near_flat_case(tmp_path, labelled)
    parity = check_parity(model, FORMATS["onnx"], "fp32", pack)
    assert parity["measured"] and parity["cosine_min"] > 0.9999
    assert parity["top1_agreement"] < 0.5  # reported either way
    assert parity["suspect"] is labelled

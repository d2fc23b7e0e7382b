"""TFLite / LiteRT: planning, the scheme mapping, and (integration) the digits CNN built with
litert-torch + ai-edge-quantizer, checked for parity and measured through the worker."""

import numpy as np
import pytest

from tests.packs import manifest_payload
import yaml

from harness.formats import FORMATS
from harness.matrix.expand import expand
from harness.matrix.load import load_matrix
from harness.matrix.schema import BaselineMethod, CalibrationSpec, ModelSpec, QuantizeMethod, SchemeSpec

DIGITS = ModelSpec(name="digits-cnn", source="builtin:digits_cnn", dataset="digits")
FP32 = BaselineMethod(name="fp32", kind="baseline")
DYNAMIC = QuantizeMethod(name="int8-dyn", kind="quantize", mode="dynamic")
STATIC = QuantizeMethod(name="int8", kind="quantize", mode="static",
                        calibration=CalibrationSpec(samples=128, method="minmax"),
                        scheme=SchemeSpec(symmetric=True, per_channel=True))
MEASURE = {"batch_sizes": [1, 8], "threads": 1, "warmup_s": 0.05, "min_iterations": 20,
           "min_seconds": 0.1, "max_seconds": 1.0, "ci_rel_width": 0.05, "accuracy": True,
           "timeout_s": 120}


def test_expand_plans_tflite_cells_for_fp32_dynamic_and_static_int8(tmp_path):
    matrix = {
        "name": "t",
        "models": [{"name": "digits-cnn", "source": "builtin:digits_cnn", "dataset": "digits"}],
        # the methods of matrix/edge.yaml
        "methods": [{"name": "fp32", "kind": "baseline"},
                    {"name": "int8-dyn", "kind": "quantize", "mode": "dynamic"},
                    {"name": "int8", "kind": "quantize", "mode": "static",
                     "calibration": {"samples": 128, "method": "minmax"},
                     "scheme": {"symmetric": True, "per_channel": True}}],
        "formats": ["tflite"],
        "devices": ["intel-cpu", "arm-edge", "nvidia-gpu"],
    }
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(matrix))
    plan = expand(load_matrix(path))
    assert {c.cell_id for c in plan.cells} == {
        f"digits-cnn/{m}/tflite/{d}" for m in ("fp32", "int8-dyn", "int8")
        for d in ("intel-cpu", "arm-edge")}
    reasons = {s.cell.cell_id: s.reason for s in plan.skipped}
    assert "no agent runtime on nvidia-gpu" in reasons["digits-cnn/fp32/tflite/nvidia-gpu"]


@pytest.mark.parametrize("step, expected", [
    (DYNAMIC, None),
    (DYNAMIC.model_copy(update={"scheme": SchemeSpec(per_channel=False)}), None),
    (DYNAMIC.model_copy(update={"scheme": SchemeSpec(symmetric=False)}), "symmetric int8 weights"),
    (STATIC, None),
    (STATIC.model_copy(update={"scheme": SchemeSpec(symmetric=False, per_channel=False,
                                                    activation_dtype="int8")}), None),
    (STATIC.model_copy(update={"calibration": CalibrationSpec(method="entropy")}), "min/max only"),
    (STATIC.model_copy(update={"calibration": CalibrationSpec(method="percentile")}),
     "min/max only"),
])
def test_what_the_tflite_quantizer_realises_and_why_not(step, expected):
    reason = FORMATS["tflite"].supports(step)
    if expected is None:
        assert reason is None
    else:
        assert reason and expected in reason


def test_the_toolchain_names_every_tool_that_shapes_the_artifact():
    assert set(FORMATS["tflite"].toolchain()) == {"torch", "litert-torch", "ai-edge-litert",
                                                  "ai-edge-quantizer"}


def test_flatten_views_become_batch_agnostic():
    """litert-torch cannot lower view(x, [batch, n]) with a symbolic batch; -1 it can."""
    import torch

    from harness.models.dims import batch_dim
    from harness.formats.tflite_format import batch_agnostic_views

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 3)).eval()
    program = torch.export.export(model, (torch.randn(2, 1, 8, 8),),
                                  dynamic_shapes=(batch_dim(),)).run_decompositions()
    graph_module = program.module()
    assert batch_agnostic_views(graph_module) == 1
    views = [n for n in graph_module.graph.nodes if n.target == torch.ops.aten.view.default]
    assert [list(n.args[1]) for n in views] == [[-1, 4 * 6 * 6]]
    x = torch.randn(5, 1, 8, 8)
    torch.testing.assert_close(graph_module(x), model(x))


# ---------------------------------------------------------------------------- integration


def _build(steps, cache_dir):
    from harness.build.variant import VariantRequest, build_variant
    return build_variant(VariantRequest(model=DIGITS, method=steps[0].name, steps=tuple(steps),
                                        format="tflite", base_dir=str(cache_dir),
                                        cache_dir=str(cache_dir)))


@pytest.fixture(scope="module")
def built(cache_dir):
    return {step.name: _build([step], cache_dir) for step in (FP32, DYNAMIC, STATIC)}


def _cell(manifest: dict, measure: dict = MEASURE):
    return manifest_payload(manifest, measure)


@pytest.mark.integration
def test_fp32_and_int8_variants_build_with_parity(built):
    fp32, dyn, static = built["fp32"], built["int8-dyn"], built["int8"]
    assert fp32["precision"] == "fp32" and fp32["runtime"] == "litert"
    assert fp32["parity"]["ok"] and fp32["parity"]["top1_agreement"] == 1.0
    for variant in (dyn, static):
        assert variant["precision"] == "int8"
        assert variant["parity"]["ok"] and variant["parity"]["top1_agreement"] >= 0.98
        assert 3.0 < fp32["size_bytes"] / variant["size_bytes"] < 4.5  # int8 weights
    assert dyn["toolchain"]["quantizer"]["recipe"] == "dynamic_wi8_afp32"
    quantizer = static["toolchain"]["quantizer"]
    assert quantizer["recipe"] == "static_wi8_ai8" and quantizer["calibration_samples"] == 128
    assert quantizer["io"] == {"input": "float32", "output": "float32"}
    assert fp32["toolchain"]["format_options"]["dynamic_axes"] == "batch only"


@pytest.mark.integration
def test_the_exported_model_has_a_dynamic_batch_and_int8_kernels(built):
    from ai_edge_litert.interpreter import Interpreter

    for name, ops in (("fp32", set()), ("int8", {"QUANTIZE", "DEQUANTIZE"})):
        interpreter = Interpreter(model_path=built[name]["artifact_path"])
        assert interpreter.get_input_details()[0]["shape_signature"][0] == -1
        assert ops <= {op["op_name"] for op in interpreter._get_ops_details()}


@pytest.mark.integration
@pytest.mark.parametrize("method", ["fp32", "int8-dyn", "int8"])
def test_variants_measure_through_the_worker(built, method):
    from agents.launcher import run_cell

    result = run_cell(_cell(built[method]), timeout_s=120)
    assert result.status == "ok", result.error
    rows = {r["batch_size"]: r for r in result.measurements}
    assert set(rows) == {1, 8}
    for row in rows.values():
        assert row["accuracy_top1"] >= 0.97
        assert row["precision"] == built[method]["precision"]
        assert 0 < row["latency_p50_ms"] <= row["latency_p99_ms"]
    assert result.runtime["runtime"] == "litert"
    assert [dtype for dtype, _ in result.runtime["inputs"].values()] == ["float32"]


@pytest.mark.integration
def test_the_runtime_quantizes_int8_inputs_and_dequantizes_int8_outputs(cache_dir, tmp_path):
    """A model with int8 I/O (what the quantizer makes without the float edges) gives the
    same logits through the session as the float-I/O model, within a quantization step."""
    import torch

    from agents.runtimes.litert_rt import open_session
    from harness.data import load_dataset
    from harness.formats.tflite_format import TfliteFormat, _quantize_static
    from harness.models import load_model

    data = load_dataset("digits", (1, 32, 32))
    module = load_model(DIGITS, tmp_path, cache_dir).module
    src, int8_io, float_io = (tmp_path / f"{n}.tflite" for n in ("fp32", "int8_io", "float_io"))
    from harness.formats.onnx_format import calibration_batches
    from tests.packs import single_input_spec

    spec = single_input_spec()
    TfliteFormat().export(module, (torch.from_numpy(data.test_x[:2]),), src, spec)
    batches = calibration_batches(data.calib, spec.inputs, 64)
    details = _quantize_static(src, int8_io, batches, spec.inputs, symmetric=False,
                               per_channel=True, float_io=False)
    assert details["io"] == {"input": "int8", "output": "int8"}
    _quantize_static(src, float_io, batches, spec.inputs, symmetric=False, per_channel=True)
    a = open_session(str(int8_io), threads=1, device="intel-cpu", precision="int8")
    b = open_session(str(float_io), threads=1, device="intel-cpu", precision="int8")
    [(a_dtype, _)] = a.info["inputs"].values()
    [(b_dtype, _)] = b.info["inputs"].values()
    assert a_dtype == "int8" and b_dtype == "float32"
    x = data.test_x[:16]
    [out_a], [out_b] = a.run({"input": x}), b.run({"input": x})
    assert out_a.dtype == np.float32 and out_a.shape == (16, 10)
    assert np.abs(out_a - out_b).max() <= 2 * a._out_quant[0][0] + 1e-6
    assert (out_a.argmax(1) == data.test_y[:16]).mean() >= 0.9
    for batch in (1, 5, 16):  # resized back and forth
        assert a.run({"input": data.test_x[:batch]})[0].shape == (batch, 10)

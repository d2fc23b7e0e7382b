"""Quantization-aware training on the trained digits CNN: torchao PT2E fake-quant
fine-tuning, converted and exported as QDQ ONNX that ONNX Runtime runs as int8 (QLinearConv)
and OpenVINO reads as u8 convolutions; the formats that cannot are skipped at plan time."""

import math

import numpy as np
import pytest
import torch

from agents.runtimes import open_session
from harness.build.variant import VariantRequest, build_variant
from harness.matrix.compat import skip_reason
from harness.methods.qat import apply_qat
from harness.models.traits import traits_of
from harness.models import weights_digest
from harness.matrix.schema import CalibrationSpec, ModelSpec, QatMethod, SchemeSpec, TrainSpec

DIGITS = ModelSpec(name="digits-cnn", source="builtin:digits_cnn", dataset="digits")
# digits_model and digits_ctx (a 240-sample train split) come from tests/harness/conftest.py
ONE_EPOCH = TrainSpec(epochs=1, lr=1e-4, batch_size=64)


AFFINE = SchemeSpec(symmetric=False)  # what ONNX Runtime fuses into QLinearConv


def qat(**kw) -> QatMethod:
    return QatMethod(name="qat", kind="qat", **({"train": ONE_EPOCH, "scheme": AFFINE} | kw))


def count(path, op_type: str) -> int:
    import onnx
    return sum(n.op_type == op_type for n in onnx.load(str(path)).graph.node)


def test_qat_trains_fake_quant_and_exports_qdq_onnx_that_ort_runs(digits_model, digits_ctx,
                                                                 tmp_path):
    from harness.formats import FORMATS

    from agents.devices import int8_saturates
    from harness.build.reduce_range import resolve

    digest = weights_digest(digits_model)
    # reduce_range: auto, resolved for this host's ONNX Runtime, as a build would
    (step,) = resolve((qat(calibration=CalibrationSpec(samples=32)),), FORMATS["onnx"],
                      int8_saturates())
    out = apply_qat(digits_model, step, digits_ctx)
    assert weights_digest(digits_model) == digest  # the source model is untouched
    r = out.report
    assert r["calibration_samples"] == 32 and r["validation_samples"] == 48
    assert r["train"]["epochs"] == 1 and math.isfinite(r["train"]["final_loss"])
    assert r["scheme"]["weights"] == {"dtype": "int8", "symmetric": True, "per_channel": True,
                                      "reduce_range": int8_saturates()}
    assert r["scheme"]["activations"] == {"dtype": "uint8", "symmetric": False,
                                          "per_channel": False}
    assert r["val_top1_qat_fake_quant"] >= r["val_top1_fp32"] - 0.05
    assert r["quantize_dequantize_ops"] > 0
    assert traits_of(out.module).qdq == r["scheme"]  # what the formats read

    x = digits_ctx.dataset.test_x
    path = tmp_path / "qat.onnx"
    from tests.packs import single_input_spec
    FORMATS["onnx"].export(out.module.eval(), (torch.from_numpy(x[:2]),), path,
                           single_input_spec())
    assert count(path, "QuantizeLinear") > 0 and count(path, "DequantizeLinear") > 0
    session = open_session("onnxruntime", str(path), threads=1, device="intel-cpu",
                           precision="int8")
    with torch.no_grad():
        torch_out = out.module(torch.from_numpy(x[:64])).numpy()
    [ort_out] = session.run({"input": x[:64]})
    assert ort_out.shape == (64, 10)
    assert np.mean(ort_out.argmax(1) == torch_out.argmax(1)) >= 0.95


@pytest.mark.parametrize("fmt,device,reason", [
    ("tflite", "intel-cpu", "litert-torch"),
    ("torch", "intel-cpu", "not realised"),
    ("tensorrt", "nvidia-gpu", None),  # TensorRT missing, or qat not realised
])
def test_formats_that_cannot_realise_qat_skip_at_plan_time(fmt, device, reason):
    why = skip_reason([qat()], fmt, device)
    assert why
    if reason:
        assert reason in why


def test_qat_skips_what_it_does_not_realise():
    assert skip_reason([qat()], "onnx", "intel-cpu") is None
    assert skip_reason([qat()], "openvino", "intel-cpu") is None
    entropy = qat(calibration=CalibrationSpec(method="entropy"))
    assert "min/max" in skip_reason([entropy], "onnx", "intel-cpu")
    signed = qat(scheme=SchemeSpec(symmetric=False, activation_dtype="int8"))
    assert skip_reason([signed], "onnx", "intel-cpu") is None
    assert "u8" in skip_reason([signed], "openvino", "intel-cpu")
    symmetric = qat(scheme=SchemeSpec(symmetric=True))
    assert "QLinearConv" in skip_reason([symmetric], "onnx", "intel-cpu")
    assert skip_reason([symmetric], "openvino", "intel-cpu") is None


def _optimized_ops(path) -> dict:
    """Op counts of the graph ONNX Runtime actually runs (after its QDQ fusions)."""
    import collections

    import onnx
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(path) + ".optimized.onnx"
    opts.log_severity_level = 3
    try:
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return collections.Counter(n.op_type for n in
                                   onnx.load(opts.optimized_model_filepath).graph.node)
    finally:
        import os
        if os.path.exists(opts.optimized_model_filepath):
            os.unlink(opts.optimized_model_filepath)


@pytest.mark.integration
@pytest.mark.parametrize("fmt,epochs", [("onnx", 1), ("openvino", 0)])
def test_qat_builds_int8_that_keeps_digits_accuracy(cache_dir, fmt, epochs):
    # One epoch on the full train split costs ~25 s here: OpenVINO's path (the same QDQ
    # export, read by convert_model) is checked on the calibrated, untrained QAT model.
    step = qat(train=TrainSpec(epochs=epochs, lr=1e-4, batch_size=64))
    built = build_variant(VariantRequest(model=DIGITS, method="qat", steps=(step,),
                                         format=fmt, base_dir=".", cache_dir=str(cache_dir)))
    assert built["precision"] == "int8"
    assert built["parity"]["ok"], built["parity"]
    from agents.evalpack import EvalPack

    pack = EvalPack(built["eval_pack"]["path"])
    session = open_session(built["runtime"], built["artifact_path"], threads=1,
                           device="intel-cpu", precision="int8")
    [out] = session.run(pack.batch(0, pack.samples))
    top1 = float(np.mean(out.argmax(1) == pack.labels))
    assert top1 >= built["eval_pack"]["reference_top1"] - 0.02
    if fmt == "onnx":
        assert count(built["artifact_path"], "QuantizeLinear") > 0
        optimized = _optimized_ops(built["artifact_path"])
        assert optimized["QLinearConv"] == 4, optimized  # every conv runs in int8
    else:
        assert session.precision == "int8", session.info  # u8 convolutions
    report = built["method_report"]["qat"]
    assert report["train"]["epochs"] == epochs
    assert report["scheme"]["weights"]["dtype"] == "int8"

import json
import uuid
from pathlib import Path

import pytest

from harness.build.variant import VariantRequest, build_variant, variant_key
from harness.matrix.schema import BaselineMethod, CalibrationSpec, ModelSpec, QuantizeMethod, SchemeSpec

DIGITS = ModelSpec(name="digits-cnn", source="builtin:digits_cnn", dataset="digits")
STATIC = QuantizeMethod(name="int8", kind="quantize", mode="static")


def request(steps, fmt="onnx", model=DIGITS, cache="/c"):
    return VariantRequest(model=model, method="m", steps=tuple(steps), format=fmt,
                          base_dir="/b", cache_dir=cache)


def key(steps, fmt="onnx", digest="d1", toolchain=None, options=None, model=DIGITS):
    return variant_key(request(steps, fmt, model), digest, toolchain or {"ort": "1"},
                       options or {"opset": 18})


def test_key_is_stable_and_ignores_the_method_label():
    renamed = STATIC.model_copy(update={"name": "whatever"})
    assert key([STATIC]) == key([renamed])


@pytest.mark.parametrize("change", [
    dict(steps=[STATIC.model_copy(update={"scheme": SchemeSpec(symmetric=False)})]),
    dict(steps=[STATIC.model_copy(update={"scheme": SchemeSpec(per_channel=False)})]),
    dict(steps=[STATIC.model_copy(update={"scheme": SchemeSpec(activation_dtype="int8")})]),
    dict(steps=[STATIC.model_copy(update={"calibration": CalibrationSpec(samples=64)})]),
    dict(steps=[STATIC.model_copy(update={"calibration": CalibrationSpec(method="entropy")})]),
    dict(steps=[BaselineMethod(name="fp32", kind="baseline")]),
    dict(fmt="torch"),
    dict(digest="d2"),
    dict(toolchain={"ort": "2"}),
    dict(options={"opset": 19}),
    dict(model=ModelSpec(name="digits-cnn", source="builtin:digits_cnn", dataset="synthetic",
                         input_shape=[1, 32, 32])),
])
def test_everything_that_shapes_the_artifact_is_in_the_key(change):
    base = dict(steps=[STATIC])
    assert key(**(base | change)) != key(**base)


@pytest.mark.integration
def test_a_corrupt_cached_artifact_is_detected_and_rebuilt(cache_dir):
    req = request([BaselineMethod(name="fp32", kind="baseline")], cache=str(cache_dir))
    first = build_variant(req)
    artifact = Path(first["artifact_path"])
    assert artifact.is_file() and first["parity"]["ok"]
    again = build_variant(req)
    assert again["cached"] and again["variant_id"] == first["variant_id"]
    artifact.write_bytes(artifact.read_bytes()[: artifact.stat().st_size // 2])  # truncated
    rebuilt = build_variant(req)
    assert not rebuilt["cached"] and rebuilt["sha256"] == first["sha256"]
    manifest = json.loads((artifact.parent / "manifest.json").read_text())
    assert manifest["sha256"] == first["sha256"]


@pytest.mark.integration
def test_static_int8_keeps_digits_accuracy_and_records_its_calibration(cache_dir):
    built = build_variant(request([STATIC], cache=str(cache_dir)))
    assert built["precision"] == "int8"
    quantizer = built["toolchain"]["quantizer"]
    assert quantizer["format"] == "QDQ" and quantizer["calibration_samples"] == 128
    assert built["parity"]["top1_agreement"] >= 0.98
    assert built["eval_pack"]["reference_top1"] >= 0.97


@pytest.mark.integration
def test_an_edited_format_rebuilds_and_an_unchanged_one_does_not(cache_dir, monkeypatch):
    from harness.build import keys

    req = request([BaselineMethod(name="fp32", kind="baseline")], cache=str(cache_dir))
    first = build_variant(req)
    assert build_variant(req)["cached"]  # unchanged code: nothing is rebuilt
    original = keys.source_text
    edit = f"\n# edited exporter {uuid.uuid4()}\n"  # new each run: the cache outlives runs
    monkeypatch.setattr(keys, "source_text", lambda name: original(name) + (
        edit if name == "harness.formats.onnx_format" else ""))
    keys.clear_digest_cache()
    try:
        edited = build_variant(req)
    finally:
        keys.clear_digest_cache()
    assert not edited["cached"] and edited["variant_id"] != first["variant_id"]
    assert "harness.formats.onnx_format" in edited["code_modules"]


def test_the_export_key_ignores_format_level_steps_and_sees_the_rest():
    import torch

    from harness.build.variant import export_key
    from harness.matrix.methods import CastMethod

    def ekey(steps, fmt="onnx", example=(torch.zeros(8, 1, 32, 32),), digest="d1"):
        return export_key(request(steps, fmt), digest, {"ort": "1"}, {"opset": 18},
                          example=example)

    fp32 = ekey([BaselineMethod(name="fp32", kind="baseline")])
    assert ekey([STATIC]) == ekey([QuantizeMethod(name="d", kind="quantize",
                                                  mode="dynamic")]) == fp32
    assert ekey([CastMethod(name="h", kind="cast", dtype="fp16"), STATIC]) != fp32
    assert ekey([STATIC], fmt="openvino") != fp32
    assert ekey([STATIC], digest="d2") != fp32
    assert ekey([STATIC], example=(torch.zeros(8, 1, 28, 28),)) != fp32

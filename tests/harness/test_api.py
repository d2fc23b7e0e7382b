"""The Python API runs the sweep's code paths on a real model: build node methods, formats
with parity, and the agent worker for measurements."""

import numpy as np
import pytest
import torch

from harness.api import ModelOptimizer, UnavailableError
from harness.data import load_dataset
from harness.formats import FORMATS


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", (1, 32, 32))


@pytest.fixture(scope="module")
def opt(cache_dir):
    return ModelOptimizer("builtin:digits_cnn", {"cache_dir": str(cache_dir)})


def test_quantize_convert_and_benchmark(opt, digits):
    fp32 = opt.convert_to_onnx()
    int8 = opt.quantize(method="static", calibration_data=digits.calib_x[:64])
    assert fp32.format == int8.format == "onnx" and int8.precision == "int8"
    assert int8.size_bytes < fp32.size_bytes / 2 and int8.parity["ok"]
    rows = opt.benchmark(models=[fp32, int8], test_data=(digits.test_x, digits.test_y))
    assert [r["status"] for r in rows] == ["ok", "ok"]
    for row in rows:
        assert row["latency_p50_ms"] > 0 and row["stop_reason"]
        assert row["accuracy_top1"] > 0.95 and row["accuracy_samples"] == len(digits.test_y)


def test_prune_then_quantize_chains_on_the_current_model(cache_dir, digits):
    opt = ModelOptimizer("builtin:digits_cnn", {"cache_dir": str(cache_dir)})
    before = sum(p.numel() for p in opt.model.parameters())
    pruned = opt.prune(sparsity=0.3, method="channel")
    assert sum(p.numel() for p in pruned.parameters()) < 0.75 * before
    variant = opt.quantize(method="dynamic")
    assert variant.precision == "int8" and variant.model_stats["params"] < 0.75 * before


def test_a_plain_torch_module_needs_its_input_shape(cache_dir):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4))
    with pytest.raises(ValueError, match="input_shape"):
        ModelOptimizer(model, {"cache_dir": str(cache_dir)})
    opt = ModelOptimizer(model, {"cache_dir": str(cache_dir), "input_shape": [1, 4, 4]})
    variant = opt.convert_to_onnx()
    assert variant.path.is_file() and variant.parity["ok"]


def test_bad_calls_say_what_is_wrong(opt):
    with pytest.raises(ValueError, match="calibration_data: no data"):
        opt.quantize(method="static")
    with pytest.raises(ValueError, match="zero samples"):
        opt.quantize(method="static", calibration_data=np.zeros((0, 1, 32, 32), np.float32))
    with pytest.raises(ValueError, match="labels are needed"):
        opt.quantize(method="qat", calibration_data=np.zeros((4, 1, 32, 32), np.float32),
                     train_data=np.zeros((4, 1, 32, 32), np.float32))


@pytest.mark.skipif(FORMATS["tensorrt"].unavailable() is None, reason="TensorRT is installed")
def test_tensorrt_conversion_says_why_it_is_unavailable(opt):
    with pytest.raises(UnavailableError, match="tensorrt Python package.*nvidia-gpu"):
        opt.convert_to_tensorrt()


def test_tensorrt_builds_from_the_onnx_model_it_is_given(opt, tmp_path):
    """What convert_to_tensorrt would build, on any host: the step for the precision, and
    the model it starts from (the given ONNX file, not the optimizer's current model)."""
    onnx_variant = opt.convert_to_onnx()
    step, loaded = opt.tensorrt_request(onnx_variant, "fp32")
    assert step.kind == "baseline" and loaded.module is None
    assert loaded.file == str(onnx_variant.path.resolve())
    assert loaded.info["source"] == f"onnx:{onnx_variant.path.resolve()}"
    assert [s.dims for s in loaded.inputs] == [("batch", 1, 32, 32)]
    step, loaded = opt.tensorrt_request(str(onnx_variant.path), "fp16")
    assert (step.kind, step.dtype) == ("cast", "fp16") and loaded.module is None
    step, loaded = opt.tensorrt_request(None, "int8")
    assert (step.kind, step.mode, loaded) == ("quantize", "static", None)
    # every one of them is a TensorRT build for nvidia-gpu, which plans there
    from harness.matrix.compat import skip_reason
    missing = FORMATS["tensorrt"].unavailable()
    assert skip_reason([step], "tensorrt", "nvidia-gpu") == (
        None if missing is None else f"format 'tensorrt': {missing}")  # only that stops it
    with pytest.raises(ValueError, match="format 'openvino'"):
        opt.tensorrt_request(opt.quantize(method="dynamic", format="openvino"), "fp32")
    (tmp_path / "x.onnx").write_text("no")
    with pytest.raises(ValueError, match="is not an ONNX model"):
        opt.tensorrt_request(tmp_path / "x.onnx", "fp32")
    with pytest.raises(ValueError, match="precision 'int4'"):
        opt.tensorrt_request(None, "int4")
    with pytest.raises(TypeError, match="onnx_model is a dict"):
        opt.tensorrt_request({}, "fp32")


def test_distill_into_a_given_student_module(cache_dir, digits):
    from harness.models.digits_cnn import DigitsCNN

    opt = ModelOptimizer("builtin:digits_cnn", {"cache_dir": str(cache_dir)})
    student = opt.distill(None, DigitsCNN(width=8), (digits.train_x[:240], digits.train_y[:240]),
                          epochs=1)
    assert sum(p.numel() for p in student.parameters()) < 20_000
    report = opt.last_report
    assert {"teacher_val_top1", "student_distilled_val_top1", "student_alone_val_top1",
            "distillation_gain"} <= set(report)
    assert opt.model is student


def test_the_seed_usage_runs_as_written(cache_dir, digits):
    """The usage the project was specified with, as written, on the digits model:
    `original` is the module given to the constructor."""
    from harness.models.digits_cnn import DigitsCNN, load_builtin

    model, _, _ = load_builtin("digits_cnn", cache_dir)
    original = model
    config = {"input_shape": [1, 32, 32], "cache_dir": str(cache_dir),
              "measure": {"batch_sizes": [1], "warmup_s": 0.1, "min_iterations": 20,
                          "min_seconds": 0.2, "max_seconds": 1.0, "timeout_s": 120}}
    cal_data = digits.calib_x[:64]
    teacher_model, student_model = model, DigitsCNN(width=8)
    train_data = (digits.train_x[:240], digits.train_y[:240])
    test_data = (digits.test_x, digits.test_y)

    optimizer = ModelOptimizer(model, config)
    quantized_model = optimizer.quantize(method='static', calibration_data=cal_data)
    pruned_model = optimizer.prune(sparsity=0.5, method='magnitude')
    compressed_model = optimizer.distill(teacher_model, student_model, train_data)
    optimized_model = compressed_model
    onnx_model = optimizer.convert_to_onnx(optimized_model)
    if FORMATS["tensorrt"].unavailable():
        with pytest.raises(UnavailableError, match="tensorrt"):
            optimizer.convert_to_tensorrt(onnx_model)
    quantized, pruned = quantized_model, pruned_model
    results = optimizer.benchmark(models=[original, quantized, pruned], test_data=test_data)

    assert [r["status"] for r in results] == ["ok", "ok", "ok"], results
    assert [r["precision"] for r in results] == ["fp32", "int8", "fp32"]
    assert results[0]["measured_as"] == "fp32 export of the given torch module (onnx)"
    assert results[1]["measured_as"] == "the variant as built"
    assert results[0]["accuracy_top1"] > 0.95 and results[1]["accuracy_top1"] > 0.95
    assert onnx_model.format == "onnx" and onnx_model.path.is_file()
    # magnitude = unstructured: half the weights are zero, the parameter count unchanged
    from harness.methods.model_stats import weight_sparsity
    assert weight_sparsity(pruned_model) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("call, error, fragment", [
    (lambda o: o.prune(sparsity=0.5, method="random"), ValueError,
     "prune: method 'random' is not known (allowed: magnitude, unstructured, channel"),
    (lambda o: o.prune(sparsity=1.5, method="magnitude"), ValueError, "sparsity"),
    (lambda o: o.quantize(method="int4"), ValueError, "allowed: dynamic, static, qat"),
    (lambda o: o.distill(None, "not-a-source", (np.zeros((4, 1, 32, 32), np.float32),
                                                np.zeros(4, np.int64))), ValueError,
     "student.source"),
    (lambda o: o.distill(None, [1, 2], (np.zeros((4, 1, 32, 32), np.float32),
                                        np.zeros(4, np.int64))), TypeError,
     "student is a list"),
    (lambda o: o.benchmark(models=[42]), TypeError, "models[0] is a int"),
])
def test_bad_arguments_name_the_argument_and_the_allowed_values(opt, call, error, fragment):
    with pytest.raises(error) as info:
        call(opt)
    assert fragment in str(info.value)


def test_a_transformers_model_with_two_int64_inputs(model_files, cache_dir):
    """Any model through the API: a transformers folder, data as named int64 arrays, quality
    by the task (fidelity: no labels)."""
    opt = ModelOptimizer(f"hf:{model_files / 'tiny-bert'}", {
        "cache_dir": str(cache_dir), "task": "classification",
        "measure": {"batch_sizes": [1], "warmup_s": 0.05, "min_iterations": 5,
                    "min_seconds": 0.05, "max_seconds": 0.5, "timeout_s": 300}})
    assert [s.name for s in opt.source.inputs] == ["input_ids", "attention_mask"]
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 100, (12, 16))
    data = {"input_ids": torch.from_numpy(ids), "attention_mask": np.ones_like(ids)}
    dynamic = opt.quantize(method="dynamic")
    static = opt.quantize(method="static", calibration_data=data)
    rows = opt.benchmark(models=[opt.convert_to_onnx(), dynamic, static], test_data=data)
    assert [r["status"] for r in rows] == ["ok", "ok", "ok"], rows
    assert [r["precision"] for r in rows] == ["fp32", "int8", "int8"]
    for row in rows:
        assert row["quality_metric"] == "fidelity_cosine_min" and row.get("accuracy_top1") is None
        assert row["quality"] >= row["quality_threshold"], row
    with pytest.raises(ValueError, match="has 2 inputs .*pass a dict"):
        opt.quantize(method="static", calibration_data=ids)
    with pytest.raises(ValueError, match="missing 'attention_mask'"):
        opt.quantize(method="static", calibration_data={"input_ids": ids})
    with pytest.raises(ValueError, match="different numbers of samples"):
        opt.quantize(method="static", calibration_data={"input_ids": ids,
                                                        "attention_mask": ids[:5]})


def test_a_source_that_cannot_load_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="source: .*nowhere does not exist"):
        ModelOptimizer(f"hf:{tmp_path / 'nowhere'}")
    with pytest.raises(ValueError, match="config.input_shape or config.inputs"):
        ModelOptimizer(torch.nn.Linear(4, 2))


def test_a_failed_symbolic_shape_inference_leaves_nothing_in_the_working_directory(
        model_files, tmp_path, monkeypatch):
    """ORT's quant_pre_process saves a half-inferred model (sym_shape_infer_temp.onnx and its
    external data) in the working directory when symbolic inference gives up, as it does on
    an exported BERT; a user's project folder must not collect them."""
    work = tmp_path / "project"
    work.mkdir()
    monkeypatch.chdir(work)
    opt = ModelOptimizer(f"hf:{model_files / 'tiny-bert'}", {
        "cache_dir": str(tmp_path / "cache"), "task": "classification"})
    variant = opt.quantize(method="dynamic")
    assert "without symbolic shape inference" in variant.manifest["toolchain"]["quantizer"]["pre_process"]
    assert sorted(p.name for p in work.iterdir()) == []

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
    with pytest.raises(UnavailableError, match="tensorrt"):
        opt.convert_to_tensorrt()


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

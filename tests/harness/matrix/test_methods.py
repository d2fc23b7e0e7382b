"""The optimization methods' configs: plan-time errors name the field, training methods skip
models without a train split, and a nas method becomes one cell per Pareto member."""

from pathlib import Path

import pytest
import yaml

from harness.errors import InputError
from harness.matrix.expand import expand
from harness.matrix.load import load_matrix

MODELS = [{"name": "digits-cnn", "source": "builtin:digits_cnn", "dataset": "digits"},
          {"name": "r18", "source": "torchvision:resnet18", "input_shape": [3, 64, 64]}]
METHODS = [
    {"name": "fp32", "kind": "baseline"},
    {"name": "fp16", "kind": "cast", "dtype": "fp16"},
    {"name": "qat", "kind": "qat", "train": {"epochs": 1}},
    {"name": "slim30", "kind": "prune", "structure": "channel", "sparsity": 0.3,
     "importance": "taylor", "steps": 2, "finetune": {"epochs": 1, "lr": 1e-3}},
    {"name": "sparse50", "kind": "prune", "structure": "unstructured", "sparsity": 0.5,
     "scope": "layer", "finetune": None},
    {"name": "kd", "kind": "distill", "student": {"width": 0.5}, "alpha": 0.5,
     "temperature": 3},
    {"name": "nas", "kind": "nas", "trials": 4, "pareto_size": 3},
    {"name": "int8", "kind": "quantize", "mode": "static",
     "calibration": {"samples": 64, "method": "percentile"},
     "scheme": {"symmetric": False, "per_channel": False}},
    {"name": "slim-int8", "chain": ["slim30", "int8"]},
]
BASE = {"name": "m", "models": MODELS, "methods": METHODS, "formats": ["onnx"],
        "devices": ["intel-cpu"]}


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def with_method(method: dict) -> dict:
    return BASE | {"methods": [{"name": "fp32", "kind": "baseline"}, method]}


def test_every_method_kind_plans(tmp_path):
    plan = expand(load_matrix(write(tmp_path, BASE)))
    cells = {c.cell_id for c in plan.cells}
    for method in ("fp32", "fp16", "qat", "slim30", "kd", "nas-p1", "nas-p3", "slim-int8"):
        assert f"digits-cnn/{method}/onnx/intel-cpu" in cells
    assert "digits-cnn/nas/onnx/intel-cpu" not in cells


def test_training_methods_skip_models_without_a_train_split(tmp_path):
    plan = expand(load_matrix(write(tmp_path, BASE)))
    reasons = {s.cell.cell_id: s.reason for s in plan.skipped}
    for method in ("qat", "slim30", "kd", "nas-p1", "slim-int8"):
        assert "labelled train split" in reasons[f"r18/{method}/onnx/intel-cpu"]
    # pruning without fine-tuning needs no labels
    assert "r18/sparse50/onnx/intel-cpu" in {c.cell_id for c in plan.cells}


def test_the_variant_steps_of_a_chain_and_a_nas_member(tmp_path):
    matrix = load_matrix(write(tmp_path, BASE)).matrix
    assert [s.kind for s in matrix.steps("slim-int8")] == ["prune", "quantize"]
    (member,) = matrix.steps("nas-p2")
    assert member.kind == "nas" and member.member == 2 and member.name == "nas"


def test_an_exclude_rule_on_a_nas_method_covers_its_members(tmp_path):
    data = BASE | {"exclude": [{"method": "nas"}]}
    plan = expand(load_matrix(write(tmp_path, data)))
    reasons = {s.cell.cell_id: s.reason for s in plan.skipped}
    assert reasons["digits-cnn/nas-p2/onnx/intel-cpu"] == "excluded by exclude[0]"


@pytest.mark.parametrize("method, field, allowed", [
    ({"name": "p", "kind": "prune", "structure": "channel", "sparsity": 1.0},
     "sparsity", "less than 1"),
    ({"name": "p", "kind": "prune", "structure": "channel", "sparsity": -0.1},
     "sparsity", "greater than or equal to 0"),
    ({"name": "p", "kind": "prune", "structure": "blocks", "sparsity": 0.3},
     "structure", "unstructured"),
    ({"name": "q", "kind": "quantize", "mode": "static", "calibration": {"samples": 0}},
     "calibration.samples", "greater than or equal to 1"),
    ({"name": "q", "kind": "qat", "calibration": {"samples": 0}},
     "calibration.samples", "greater than or equal to 1"),
    ({"name": "c", "chain": ["fp32", "nope"]}, "nope", "allowed"),
    ({"name": "d", "kind": "distill", "student": {}}, "student", "exactly one"),
    ({"name": "d", "kind": "distill", "student": {"source": "resnet18"}}, "student.source",
     "torchvision:ARCH"),
    ({"name": "d", "kind": "distill", "student": {"width": 0.5}, "alpha": 2},
     "alpha", "less than or equal to 1"),
    ({"name": "c", "kind": "cast", "dtype": "fp8"}, "dtype", "fp16"),
    ({"name": "n", "kind": "nas", "trials": 1}, "trials", "greater than or equal to 2"),
])
def test_bad_method_configs_name_the_field(tmp_path, method, field, allowed):
    with pytest.raises(InputError) as info:
        load_matrix(write(tmp_path, with_method(method)))
    text = str(info.value)
    assert field in text and allowed in text and "m.yaml" in text


def test_training_method_with_no_trainable_model_is_a_plan_error(tmp_path):
    data = with_method({"name": "qat", "kind": "qat"}) | {"models": MODELS[1:]}
    with pytest.raises(InputError) as info:
        load_matrix(write(tmp_path, data))
    assert "methods['qat']" in str(info.value) and "training data" in str(info.value)


def test_nas_cannot_be_chained(tmp_path):
    data = BASE | {"methods": [{"name": "nas", "kind": "nas"},
                               {"name": "int8", "kind": "quantize", "mode": "dynamic"},
                               {"name": "c", "chain": ["nas", "int8"]}]}
    with pytest.raises(InputError, match="cannot be part of a chain"):
        load_matrix(write(tmp_path, data))

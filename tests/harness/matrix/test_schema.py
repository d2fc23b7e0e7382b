from pathlib import Path

import pytest
import yaml

from harness.errors import InputError
from harness.matrix.expand import Cell, expand
from harness.matrix.load import load_matrix

BASE = {
    "name": "t",
    "models": [{"name": "digits-cnn", "source": "builtin:digits_cnn", "dataset": "digits"},
               {"name": "r18", "source": "torchvision:resnet18", "input_shape": [3, 64, 64]}],
    "methods": [{"name": "fp32", "kind": "baseline"},
                {"name": "dyn", "kind": "quantize", "mode": "dynamic"},
                {"name": "int8", "kind": "quantize", "mode": "static"}],
    "formats": ["torch", "onnx", "tensorrt"],
    "devices": ["intel-cpu", "nvidia-gpu"],
}


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


def write(tmp_path: Path, data, name="m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.dump(data, Dumper=_NoAliasDumper))
    return path


def test_expansion_covers_every_combination_once(tmp_path):
    plan = expand(load_matrix(write(tmp_path, BASE)))
    cells = [c.cell_id for c in plan.cells] + [s.cell.cell_id for s in plan.skipped]
    assert len(cells) == len(set(cells)) == 2 * 3 * 3 * 2


def test_runnable_cells_and_reasons(tmp_path):
    plan = expand(load_matrix(write(tmp_path, BASE)))
    runnable = {c.cell_id for c in plan.cells}
    assert runnable == {
        f"{m}/{meth}/{fmt}/intel-cpu" for m in ("digits-cnn", "r18")
        for meth, fmt in (("fp32", "torch"), ("fp32", "onnx"), ("dyn", "onnx"), ("int8", "onnx"),
                          ("int8", "torch"))
    } | {f"{m}/fp32/{fmt}/nvidia-gpu" for m in ("digits-cnn", "r18")
         for fmt in ("torch", "onnx")}  # the torch CUDA and ONNX Runtime GPU agents
    reasons = {s.cell.cell_id: s.reason for s in plan.skipped}
    assert "tensorrt Python package is not installed" in reasons["r18/fp32/tensorrt/nvidia-gpu"]
    assert "CUDA provider has no int8" in reasons["r18/int8/onnx/nvidia-gpu"]
    assert "CUDA provider has no int8" in reasons["r18/dyn/onnx/nvidia-gpu"]
    assert "dynamic" in reasons["digits-cnn/dyn/torch/intel-cpu"]
    assert "no int8 path" in reasons["digits-cnn/int8/torch/nvidia-gpu"]


def test_exclude_rules_skip_with_the_rule_named(tmp_path):
    data = BASE | {"exclude": [{"model": "r18", "format": "onnx"}]}
    plan = expand(load_matrix(write(tmp_path, data)))
    reasons = {s.cell.cell_id: s.reason for s in plan.skipped}
    assert reasons["r18/fp32/onnx/intel-cpu"] == "excluded by exclude[0]"
    assert Cell("digits-cnn", "fp32", "onnx", "intel-cpu") in plan.cells


def test_an_exclude_rule_field_may_list_names_and_matches_any_of_them(tmp_path):
    data = BASE | {"exclude": [{"model": ["r18"], "method": ["dyn", "int8"],
                                "format": ["onnx", "torch"]}]}
    plan = expand(load_matrix(write(tmp_path, data)))
    reasons = {s.cell.cell_id: s.reason for s in plan.skipped}
    for cell in ("r18/dyn/onnx/intel-cpu", "r18/int8/onnx/intel-cpu",
                 "r18/int8/torch/intel-cpu"):
        assert reasons[cell] == "excluded by exclude[0]"
    runnable = {c.cell_id for c in plan.cells}
    assert {"r18/fp32/onnx/intel-cpu", "digits-cnn/int8/onnx/intel-cpu"} <= runnable


def test_a_model_may_have_its_own_batch_sizes(tmp_path):
    models = [BASE["models"][0], BASE["models"][1] | {"batch_sizes": [1]}]
    matrix = load_matrix(write(tmp_path, BASE | {"models": models,
                                                 "measure": {"batch_sizes": [1, 8]}})).matrix
    assert matrix.measure_for("r18").batch_sizes == [1]
    assert matrix.measure_for("digits-cnn").batch_sizes == [1, 8]
    assert matrix.measure.batch_sizes == [1, 8]  # the matrix's own setting is untouched


def test_static_quantization_gets_explicit_calibration_defaults(tmp_path):
    matrix = load_matrix(write(tmp_path, BASE)).matrix
    int8 = matrix.method("int8")
    assert int8.calibration.samples == 128 and int8.calibration.method == "minmax"
    assert matrix.method("dyn").calibration is None


def test_chains_flatten_and_quantization_must_come_last(tmp_path):
    data = BASE | {"methods": BASE["methods"] + [
        {"name": "c1", "chain": ["fp32", "int8"]},
        {"name": "c2", "chain": ["c1"]},
        {"name": "bad", "chain": ["int8", "fp32"]}]}
    loaded = load_matrix(write(tmp_path, data))
    assert [s.name for s in loaded.matrix.steps("c2")] == ["fp32", "int8"]
    plan = expand(loaded)
    assert Cell("digits-cnn", "c2", "onnx", "intel-cpu") in plan.cells
    reasons = {s.cell.cell_id: s.reason for s in plan.skipped}
    assert "last step" in reasons["digits-cnn/bad/onnx/intel-cpu"]


@pytest.mark.parametrize("mutate, field, fragment", [
    (lambda d: d | {"modles": []}, "modles", "unknown key"),
    (lambda d: d | {"formats": ["onnx", "coreml"]}, "formats[1]", "'coreml' is not allowed"),
    (lambda d: d | {"models": [{"name": "../x", "source": "builtin:digits_cnn"}]},
     "models[0].name", "not a valid name"),
    (lambda d: d | {"methods": [{"name": "q", "kind": "quantize", "mode": "dynamic",
                                 "calibraton": {}}]}, "methods[0].calibraton",
     "allowed: name, kind, mode, calibration, scheme"),
    (lambda d: d | {"methods": [{"name": "q", "kind": "prunex"}]}, "methods[0]", "needs 'kind'"),
    (lambda d: d | {"methods": [{"name": "c", "chain": ["nope"]}]}, "nope", "not a method"),
    (lambda d: d | {"methods": [{"name": "c", "chain": ["c"]}]}, "c -> c", "cycle"),
    (lambda d: d | {"measure": {"threads": 0}}, "measure.threads", "greater than or equal"),
    (lambda d: d | {"measure": {"min_seconds": 5, "max_seconds": 1}}, "measure",
     "max_seconds must be >= min_seconds"),
    (lambda d: d | {"models": BASE["models"] * 2}, "models", "duplicate name"),
    (lambda d: d | {"exclude": [{"model": "ghost"}]}, "exclude[0].model", "not a model"),
    (lambda d: d | {"exclude": [{"model": ["r18", "ghost"]}]}, "exclude[0].model",
     "'ghost' is not a model"),
    (lambda d: d | {"exclude": [{"format": ["onnx", "coreml"]}]}, "exclude[0].format",
     "coreml"),
    (lambda d: d | {"models": [BASE["models"][0] | {"batch_sizes": [8, 8]}]},
     "models[0]", "batch_sizes must not repeat"),
    (lambda d: d | {"models": [{"name": "m", "source": "http://x"}]}, "models[0].source",
     "builtin:NAME"),
    (lambda d: d | {"models": [{"name": "m", "source": "torchvision:resnet18"}]},
     "models[0]", "input_shape or inputs is required"),
])
def test_invalid_matrices_name_file_field_and_allowed(tmp_path, mutate, field, fragment):
    path = write(tmp_path, mutate(dict(BASE)))
    with pytest.raises(InputError) as err:
        load_matrix(path)
    message = str(err.value)
    assert str(path) in message and field in message and fragment in message, message


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("- a\n- b\n", "top level is a list"),
    ("name: [unclosed\n", "not valid YAML"),
    ("a: &x [1]\nb: *x\n", "aliases"),
])
def test_unreadable_files(tmp_path, text, fragment):
    with pytest.raises(InputError) as err:
        load_matrix(write(tmp_path, text))
    assert fragment in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_matrix(tmp_path / "nope.yaml")

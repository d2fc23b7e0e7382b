"""`dataset: {npz: PATH}`: the user's arrays named by input, split reproducibly (or as the
file splits them), labels optional; arrays that do not fit the model's inputs are refused
at plan time with what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from agents.cell import InputSpec
from harness.data import check_dataset, fixed_shape, is_labelled, load_dataset
from harness.matrix.schema import NpzDataset
from tests.conftest import run_cli

TEXT = (InputSpec("input_ids", "int64", ("batch", "seq"), 0, 100),
        InputSpec("attention_mask", "int64", ("batch", "seq"), fill=1))


def write(path, **arrays):
    np.savez(path, **arrays)
    return NpzDataset(npz=path.name)


def text_arrays(samples=20, seq=12, rng=np.random.default_rng(0)):
    return {"input_ids": rng.integers(0, 100, (samples, seq)),
            "attention_mask": np.ones((samples, seq), np.int64)}


def test_plain_arrays_are_split_reproducibly(tmp_path):
    setting = write(tmp_path / "d.npz", **text_arrays(), labels=np.arange(20) % 3)
    assert check_dataset(setting, TEXT, tmp_path) is None
    assert is_labelled(setting, tmp_path) and fixed_shape(setting, TEXT, tmp_path) == {"seq": 12}
    data = load_dataset(setting, TEXT, tmp_path)
    assert data.split["test"] == 5 and data.split["calib"] == 5 and data.split["train"] == 10
    assert data.test["input_ids"].shape == (5, 12) and data.test_y.shape == (5,)
    again = load_dataset(setting, TEXT, tmp_path)
    assert np.array_equal(data.test["input_ids"], again.test["input_ids"])
    # test, calibration and training samples are disjoint
    rows = lambda split: {tuple(r) for r in split["input_ids"]}  # noqa: E731
    assert not rows(data.test) & rows(data.calib) and not rows(data.test) & rows(data.train)


def test_explicit_splits_are_used_as_given(tmp_path):
    test, calib = text_arrays(4), text_arrays(6)
    setting = write(tmp_path / "d.npz", **{f"test/{k}": v for k, v in test.items()},
                    **{f"calib/{k}": v for k, v in calib.items()})
    data = load_dataset(setting, TEXT, tmp_path)
    assert np.array_equal(data.test["input_ids"], test["input_ids"])
    assert np.array_equal(data.calib["input_ids"], calib["input_ids"])
    assert not data.labelled and data.train is None


def test_an_input_without_a_batch_axis_is_fed_as_stored(tmp_path):
    specs = (InputSpec("features", "float32", ("batch", 50, 40)),
             InputSpec("sample_rate", "int64", ()))
    setting = write(tmp_path / "d.npz", features=np.zeros((8, 50, 40), np.float32),
                    sample_rate=np.array(16000))
    data = load_dataset(setting, specs, tmp_path)
    assert data.test["sample_rate"].shape == () and data.test["sample_rate"] == 16000
    assert data.test_samples == 2


@pytest.mark.parametrize("arrays, message", [
    ({"input_ids": np.zeros((4, 8), np.int64)}, "no array 'attention_mask'"),
    (text_arrays() | {"token_type_ids": np.zeros((20, 12), np.int64)},
     "'token_type_ids', which is no input"),
    (text_arrays() | {"input_ids": np.zeros((20, 12, 1), np.int64)}, "has 3 dims"),
    (text_arrays() | {"input_ids": np.zeros((20, 12), np.float32)}, "is float32; the input"),
    (text_arrays() | {"attention_mask": np.ones((19, 12), np.int64)},
     "different numbers of samples"),
    (text_arrays() | {"labels": np.zeros(7)}, "labels has 7 entries for 20 samples"),
    ({"val/input_ids": np.zeros((4, 8), np.int64)}, "unknown split 'val'"),
])
def test_arrays_that_do_not_fit_are_refused(tmp_path, arrays, message):
    setting = write(tmp_path / "d.npz", **arrays)
    problem = check_dataset(setting, TEXT, tmp_path)
    assert problem is not None and message in problem, problem


def test_a_file_that_is_not_an_archive(tmp_path):
    (tmp_path / "d.npz").write_text("hello")
    assert "is not a numpy .npz archive" in check_dataset(NpzDataset(npz="d.npz"), TEXT,
                                                          tmp_path)
    assert "not found" in check_dataset(NpzDataset(npz="none.npz"), TEXT, tmp_path)


def test_the_cli_refuses_a_mismatching_file_and_a_sweep_of_an_axis_it_fixes(tmp_path,
                                                                             model_files):
    (tmp_path / "tiny-bert").symlink_to(model_files / "tiny-bert")
    write(tmp_path / "good.npz", **text_arrays())
    write(tmp_path / "bad.npz", input_ids=np.zeros((4, 8), np.int64))
    base = ("name: t\nmodels:\n  - {{name: m, source: 'hf:tiny-bert', dataset: {{npz: {npz}}}}}"
            "\nmethods: [{{name: fp32, kind: baseline}}]\nformats: [onnx]\n"
            "devices: [intel-cpu]\nmeasure: {{shapes: {{seq: {seq}}}}}\n")
    matrix = tmp_path / "m.yaml"
    matrix.write_text(base.format(npz="bad.npz", seq="[12]"))
    out = run_cli("plan", str(matrix))
    assert out.returncode == 2 and "models[0].dataset" in out.stderr
    assert "no array 'attention_mask'" in out.stderr and "Traceback" not in out.stderr
    matrix.write_text(base.format(npz="good.npz", seq="[12, 64]"))
    out = run_cli("plan", str(matrix))
    assert out.returncode == 2 and "fixes axis 'seq' at 12" in out.stderr, out.stderr
    matrix.write_text(base.format(npz="good.npz", seq="[12]"))
    assert run_cli("plan", str(matrix)).returncode == 0

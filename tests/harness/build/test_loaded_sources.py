"""A build process keeps the models it loaded last, and loads again when their files or
their weights changed."""

import os
import shutil

import pytest
import torch

import harness.models
from harness.build import loaded_sources
from harness.matrix.schema import ModelSpec


@pytest.fixture
def loads(monkeypatch):
    """Counts the real loads behind loaded_source, starting from nothing kept."""
    loaded_sources.forget()
    calls = []
    real = harness.models.load_model

    def counted(spec, base_dir, cache_dir):
        calls.append(spec.name)
        return real(spec, base_dir, cache_dir)

    monkeypatch.setattr(harness.models, "load_model", counted)
    yield calls
    loaded_sources.forget()


@pytest.fixture
def bert_folder(model_files, tmp_path):
    shutil.copytree(model_files / "tiny-bert", tmp_path / "tiny-bert")
    return tmp_path


BERT = ModelSpec(name="bert", source="hf:tiny-bert", task="classification")


def test_a_second_build_of_the_same_model_reuses_the_load(loads, bert_folder, cache_dir):
    first = loaded_sources.loaded_source(BERT, bert_folder, cache_dir)
    second = loaded_sources.loaded_source(BERT, bert_folder, cache_dir)
    assert second is first and loads == ["bert"]
    loaded, dataset, digest = first
    assert loaded.inputs and dataset.name == "synthetic" and len(digest) == 20


def test_a_changed_file_under_the_source_loads_again(loads, bert_folder, cache_dir):
    loaded_sources.loaded_source(BERT, bert_folder, cache_dir)
    config = bert_folder / "tiny-bert" / "config.json"
    info = config.stat()
    os.utime(config, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))
    loaded_sources.loaded_source(BERT, bert_folder, cache_dir)
    assert loads == ["bert", "bert"]


def test_weights_changed_in_place_load_again(loads, bert_folder, cache_dir):
    loaded, _, _ = loaded_sources.loaded_source(BERT, bert_folder, cache_dir)
    with torch.no_grad():
        next(loaded.module.parameters()).add_(1.0)
    again, _, _ = loaded_sources.loaded_source(BERT, bert_folder, cache_dir)
    assert loads == ["bert", "bert"] and again is not loaded


def test_a_file_source_and_the_oldest_entry_leaves(loads, model_files, tmp_path, cache_dir):
    shutil.copy(model_files / "digits_cnn.onnx", tmp_path / "digits.onnx")
    specs = [ModelSpec(name=f"m{k}", source="onnx:digits.onnx", dataset="digits")
             for k in range(loaded_sources.KEEP + 1)]
    for spec in specs:
        loaded_sources.loaded_source(spec, tmp_path, cache_dir)
    loaded_sources.loaded_source(specs[-1], tmp_path, cache_dir)  # kept
    loaded_sources.loaded_source(specs[0], tmp_path, cache_dir)   # evicted: loads again
    assert loads == ["m0", "m1", "m2", "m0"]


def test_files_state_names_the_files_a_spec_field_points_to(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "a.onnx").write_bytes(b"x")
    state = loaded_sources.files_state({"source": "onnx:models/a.onnx", "dataset": "digits"},
                                       tmp_path)
    assert [entry[0][0] for entry in state] == [str(tmp_path / "models" / "a.onnx")]

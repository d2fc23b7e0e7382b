"""A rerun finds a variant it built before without loading the model, and loads it again
whenever something the figures come from has changed."""

import json
import os
from pathlib import Path

import pytest
import torch

from harness.build import build_index, loaded_sources
from harness.build.variant import VariantRequest, build_variant
from harness.matrix.schema import BaselineMethod, ModelSpec

FP32 = BaselineMethod(name="fp32", kind="baseline")


def _request(model, base_dir, cache_dir, fmt="onnx"):
    return VariantRequest(model=model, method="fp32", steps=(FP32,), format=fmt,
                          base_dir=str(base_dir), cache_dir=str(cache_dir))


@pytest.fixture
def loads(monkeypatch):
    """Counts the model loads build_variant makes (each still loads, for real)."""
    calls = []
    original = loaded_sources.loaded_source

    def counted(*args, **kwargs):
        calls.append(args[0].name)
        return original(*args, **kwargs)

    monkeypatch.setattr(loaded_sources, "loaded_source", counted)
    loaded_sources.forget()
    yield calls
    loaded_sources.forget()


@pytest.fixture
def weights_file(tmp_path, digits_model):
    """The digits CNN as a user's state_dict file: a file the spec names."""
    torch.save(digits_model.state_dict(), tmp_path / "digits.pt")
    return tmp_path / "digits.pt"


@pytest.mark.integration
def test_a_rerun_finds_its_variant_without_loading_the_model(tmp_path, cache_dir,
                                                             weights_file, loads):
    model = ModelSpec(name="mine", source="builtin:digits_cnn", dataset="digits",
                      weights="digits.pt")
    first = build_variant(_request(model, tmp_path, cache_dir))
    assert loads == ["mine"]
    again = build_variant(_request(model, tmp_path, cache_dir))
    assert loads == ["mine"], "the rerun loaded the model"
    assert again["cached"] and again["variant_id"] == first["variant_id"]
    assert again["eval_pack"] == first["eval_pack"]
    assert again["model"] == "mine" and again["method"] == "fp32"

    os.utime(weights_file, ns=(weights_file.stat().st_atime_ns,
                               weights_file.stat().st_mtime_ns + 10**9))
    touched = build_variant(_request(model, tmp_path, cache_dir))
    assert loads == ["mine", "mine"], "a weights file that changed was not read again"
    assert touched["cached"] and touched["variant_id"] == first["variant_id"]  # same bytes

    artifact = Path(first["artifact_path"])
    artifact.write_bytes(artifact.read_bytes()[: artifact.stat().st_size // 2])
    rebuilt = build_variant(_request(model, tmp_path, cache_dir))
    assert not rebuilt["cached"] and rebuilt["sha256"] == first["sha256"]
    assert loads == ["mine", "mine", "mine"]


@pytest.mark.integration
def test_another_format_or_step_is_another_entry(tmp_path, cache_dir, weights_file, loads):
    model = ModelSpec(name="mine", source="builtin:digits_cnn", dataset="digits",
                      weights="digits.pt")
    onnx = build_variant(_request(model, tmp_path, cache_dir))
    openvino = build_variant(_request(model, tmp_path, cache_dir, fmt="openvino"))
    assert onnx["variant_id"] != openvino["variant_id"]
    assert build_variant(_request(model, tmp_path, cache_dir, fmt="openvino"))[
        "variant_id"] == openvino["variant_id"]


def test_sources_the_fingerprint_cannot_see_are_not_indexed(tmp_path):
    (tmp_path / "tiny-bert").mkdir()

    def request(source):
        return _request(ModelSpec.model_construct(name="m", source=source, dataset="digits"),
                        tmp_path, tmp_path / "cache")

    assert build_index.indexed(request("builtin:digits_cnn"))
    assert build_index.indexed(request("torchvision:resnet18"))
    assert build_index.indexed(request("onnx:model.onnx"))
    assert build_index.indexed(request("hf:tiny-bert"))            # a folder here
    assert not build_index.indexed(request("hf:prajjwal1/bert-tiny"))  # a hub id
    assert not build_index.indexed(request("module:nets.py:build"))


def test_a_prune_drops_the_entries_of_removed_variants(tmp_path):
    (tmp_path / "variants" / "kept").mkdir(parents=True)
    index = tmp_path / build_index.INDEX_FOLDER
    index.mkdir()
    (index / "a.json").write_text(json.dumps({"variant": "kept"}))
    (index / "b.json").write_text(json.dumps({"variant": "gone"}))
    (index / "c.json").write_text("{not json")
    assert build_index.drop_stale(tmp_path) == 2
    assert [p.name for p in index.iterdir()] == ["a.json"]

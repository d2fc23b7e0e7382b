"""`hf:PATH` sources: a transformers folder (as save_pretrained writes it) becomes a module
taking its named inputs positionally, built by the task's Auto class; its default inputs
come from config.json; bad folders are refused at plan time naming the field."""

from __future__ import annotations

import json

import pytest
import torch

from harness.matrix.schema import ModelSpec
from harness.models import SourceError, check_source, load_model, model_facts
from tests.conftest import run_cli


def spec(**fields) -> ModelSpec:
    return ModelSpec(**({"name": "m", "source": "hf:tiny-bert"} | fields))


def test_default_inputs_come_from_the_config(model_files):
    facts = model_facts(spec(), model_files)
    assert facts.kind == "module" and facts.task == "embedding"  # the source's default
    ids, mask = facts.inputs
    assert (ids.name, ids.dtype, ids.dims, ids.low, ids.high) == (
        "input_ids", "int64", ("batch", "seq"), 0, 100)  # vocab_size 100
    assert (mask.name, mask.fill) == ("attention_mask", 1)


@pytest.mark.parametrize("task, shape", [("classification", (2, 3)),   # logits, 3 labels
                                         ("embedding", (2, 7, 32))])   # last_hidden_state
def test_the_task_picks_the_auto_class_and_the_output(model_files, tmp_path, task, shape):
    loaded = load_model(spec(task=task), model_files, tmp_path)
    assert loaded.task == task and loaded.info["weights"] == "random-init from config.json"
    ids = torch.randint(0, 100, (2, 7))
    with torch.no_grad():
        out = loaded.module(ids, torch.ones_like(ids))
    assert tuple(out.shape) == shape


def test_random_init_is_seeded_so_the_digest_is_stable(model_files, tmp_path):
    first = load_model(spec(task="classification"), model_files, tmp_path)
    again = load_model(spec(task="classification"), model_files, tmp_path)
    assert first.weights_digest == again.weights_digest


def test_default_weights_load_the_folders_own(model_files, tmp_path):
    loaded = load_model(spec(task="classification", weights="DEFAULT"), model_files, tmp_path)
    assert loaded.info["weights"] == "from_pretrained"


def test_a_folder_without_config_json_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    problem = check_source(spec(source="hf:empty"), tmp_path)
    assert problem.field == "source" and "no config.json" in problem.message


def test_a_config_that_is_not_json_is_refused(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{vocab_size: ")
    problem = check_source(spec(source="hf:broken"), tmp_path)
    assert "is not JSON" in problem.message


def test_a_model_without_vocab_size_must_declare_its_inputs(tmp_path):
    (tmp_path / "vision").mkdir()
    (tmp_path / "vision" / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(SourceError) as caught:
        model_facts(spec(source="hf:vision"), tmp_path)
    assert caught.value.problem.field == "inputs" and "vocab_size" in caught.value.problem.message


def plan(tmp_path, model: str):
    """`harness plan` on a one-model, one-cell matrix."""
    matrix = tmp_path / "m.yaml"
    matrix.write_text(f"name: t\nmodels:\n  - {model}\nmethods: [{{name: fp32, kind: "
                      f"baseline}}]\nformats: [onnx]\ndevices: [intel-cpu]\n"
                      f"measure: {{shapes: {{seq: [8]}}}}\n")
    return run_cli("plan", str(matrix))


def test_a_task_the_source_does_not_serve_exits_2(tmp_path):
    out = plan(tmp_path, "{name: m, source: 'builtin:digits_cnn', task: embedding}")
    assert out.returncode == 2 and "models[0].task" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_a_missing_folder_that_is_no_hub_id_exits_2(tmp_path):
    out = plan(tmp_path, "{name: m, source: 'hf:./models/nowhere'}")
    assert out.returncode == 2 and "models[0].source" in out.stderr
    assert "does not exist" in out.stderr and "Traceback" not in out.stderr

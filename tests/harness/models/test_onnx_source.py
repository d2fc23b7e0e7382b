"""`onnx:PATH` sources: inputs, dtypes and dims read from the graph, merged with the
matrix's `inputs:`; every kind of bad file or declaration refused at plan time, naming the
field (and through the CLI: exit 2, no traceback)."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from agents.cell import InputSpec
from harness.matrix.schema import ModelSpec
from harness.models import SourceError, check_source, load_model, model_facts
from tests.conftest import run_cli


def spec(source: str, **fields) -> ModelSpec:
    return ModelSpec(name="m", source=source, **fields)


def relu_file(path, dims, elem=TensorProto.FLOAT):
    """A one-node ONNX file whose input x has these dims (None: dynamic and unnamed)."""
    x = helper.make_tensor_value_info("x", elem, dims)
    y = helper.make_tensor_value_info("y", elem, dims)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


def test_inputs_are_read_from_the_graph_and_merged_with_the_matrix(model_files):
    facts = model_facts(spec("onnx:speech_kws.onnx", inputs={
        "sample_rate": {"shape": [], "dtype": "int64", "fill": 16000},
        "state": {"shape": [2, "batch", 64], "fill": 0}}), model_files)
    assert facts.kind == "file" and facts.task == "generic"
    by_name = {s.name: s for s in facts.inputs}
    assert list(by_name) == ["features", "sample_rate", "state"]  # the graph's order
    assert by_name["features"] == InputSpec("features", "float32", ("batch", "frames", 40))
    assert by_name["sample_rate"].dims == () and by_name["sample_rate"].batch_axis is None
    assert by_name["sample_rate"].dtype == "int64" and by_name["sample_rate"].fill == 16000
    assert by_name["state"].batch_axis == 1


def test_the_trained_vad_the_default_job_copies_from_its_package(tmp_path):
    """Silero VAD (edge.yaml's `vad`): a trained model from a registry package, copied by
    `make models`; its audio and state dims come from the file, the sample rate and the
    state's fill from the matrix."""
    from examples.make_models import copy_silero_vad

    copy_silero_vad(tmp_path / "vad.onnx")
    facts = model_facts(spec("onnx:vad.onnx", inputs={
        "sr": {"shape": [], "dtype": "int64", "fill": 16000},
        "state": {"shape": [2, "batch", 128], "fill": 0}}), tmp_path)
    by_name = {s.name: s for s in facts.inputs}
    assert by_name["input"] == InputSpec("input", "float32", ("batch", "sequence"))
    assert by_name["state"].batch_axis == 1 and by_name["sr"].dims == ()


def test_a_file_that_names_every_dim_needs_no_declaration(model_files):
    facts = model_facts(spec("onnx:digits_cnn.onnx", dataset="digits"), model_files)
    assert facts.inputs == (InputSpec("input", "float32", ("batch", 1, 32, 32)),)
    assert facts.task == "classification"  # labelled data makes it a classifier


def test_loading_gives_the_file_and_its_digest(model_files, tmp_path):
    loaded = load_model(spec("onnx:digits_cnn.onnx"), model_files, tmp_path)
    assert loaded.module is None and loaded.file.endswith("digits_cnn.onnx")
    assert len(loaded.weights_digest) == 64


@pytest.mark.parametrize("name, message", [
    ("missing.onnx", "does not exist"),
    ("folder.onnx", "is not a file"),
    ("notes.onnx", "is not an ONNX model"),
])
def test_bad_files_are_refused(tmp_path, name, message):
    (tmp_path / "folder.onnx").mkdir()
    (tmp_path / "notes.onnx").write_text("not a model")
    problem = check_source(spec(f"onnx:{name}"), tmp_path)
    assert problem is not None and problem.field == "source" and message in problem.message


def test_an_onnx_file_carries_its_own_weights(model_files):
    problem = check_source(spec("onnx:digits_cnn.onnx", weights="w.pt"), model_files)
    assert problem.field == "weights"


@pytest.mark.parametrize("inputs, field, message", [
    ({"audio": {"shape": ["batch", 8]}}, "inputs.audio", "has no input 'audio'"),
    ({"features": {"shape": ["batch", "frames", 40], "dtype": "int64"}},
     "inputs.features.dtype", "is float32, not int64"),
    ({"features": {"shape": ["batch", 40]}}, "inputs.features.shape", "has 3 dims"),
    ({"features": {"shape": ["batch", "frames", 80]}}, "inputs.features.shape[2]",
     "fixes this dim"),
])
def test_declarations_that_contradict_the_file_are_refused(model_files, inputs, field, message):
    with pytest.raises(SourceError) as caught:
        model_facts(spec("onnx:speech_kws.onnx", inputs=inputs), model_files)
    assert caught.value.problem.field == field and message in caught.value.problem.message


def test_an_unnamed_dynamic_dim_must_be_declared(tmp_path):
    relu_file(tmp_path / "open.onnx", [None, 4])
    with pytest.raises(SourceError) as caught:
        model_facts(spec("onnx:open.onnx"), tmp_path)
    assert caught.value.problem.field == "inputs.x" and "unnamed" in caught.value.problem.message
    facts = model_facts(spec("onnx:open.onnx", inputs={"x": {"shape": ["batch", 4]}}), tmp_path)
    assert facts.inputs[0].dims == ("batch", 4)


def test_an_element_type_the_harness_cannot_feed(tmp_path):
    relu_file(tmp_path / "f64.onnx", ["batch", 4], elem=TensorProto.DOUBLE)
    with pytest.raises(SourceError) as caught:
        model_facts(spec("onnx:f64.onnx"), tmp_path)
    assert "element type 11" in caught.value.problem.message


@pytest.mark.parametrize("model, shapes, field", [
    ("source: onnx:nowhere.onnx", "{frames: [50]}", "models[0].source"),
    ("source: onnx:speech_kws.onnx\n    inputs: {audio: {shape: [batch]}}", "{frames: [50]}",
     "models[0].inputs.audio"),
    ("source: onnx:speech_kws.onnx\n    inputs: {features: {shape: [batch, frames, 40], "
     "dtype: float64}}", "{frames: [50]}", "models[0].inputs.features.dtype"),
    ("source: onnx:speech_kws.onnx", "{}", "models[0].inputs.features"),  # frames: no value
    ("source: onnx:speech_kws.onnx", "{frames: [50], seq: [8]}", "measure.shapes.seq"),
])
def test_the_cli_refuses_them_at_plan_time(model_files, tmp_path, model, shapes, field):
    matrix = tmp_path / "m.yaml"
    matrix.write_text(f"name: t\nmodels:\n  - name: m\n    {model}\nmethods: [{{name: fp32, "
                      f"kind: baseline}}]\nformats: [onnx]\ndevices: [intel-cpu]\n"
                      f"measure: {{shapes: {shapes}}}\n")
    (tmp_path / "speech_kws.onnx").symlink_to(model_files / "speech_kws.onnx")
    out = run_cli("plan", str(matrix))
    assert out.returncode == 2, out.stdout + out.stderr
    assert field in out.stderr and str(matrix) in out.stderr and "Traceback" not in out.stderr

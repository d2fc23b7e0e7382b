"""The CLI as a separate process: every matrix in matrix/ plans; bad input exits 2 with a
message naming the file and field, and no traceback."""

import json
import re

import pytest

from tests.conftest import MATRIX_DIR, run_cli

MATRICES = sorted(MATRIX_DIR.glob("*.yaml"))
TIMING = re.compile(r"\d(\.\d+)?\s*(ms|us|µs|s)\b|\d(\.\d+)?x\b")


@pytest.mark.parametrize("matrix", MATRICES, ids=[m.name for m in MATRICES])
def test_every_shipped_matrix_plans(matrix, shipped_models):
    out = run_cli("plan", str(matrix), "--json")
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["cells"], "a shipped matrix with nothing to run"
    for skipped in plan["skipped"]:
        assert skipped["reason"]
        # Reasons are stored in every user's database: they state causes, not one
        # machine's timings (those belong in the docs).
        assert not TIMING.search(skipped["reason"]), skipped["reason"]


def test_plan_prints_a_table():
    out = run_cli("plan", str(MATRIX_DIR / "smoke.yaml"))
    assert out.returncode == 0 and "cells to measure" in out.stdout


def test_the_default_job_keeps_every_method_family_format_and_model_kind(shipped_models):
    """edge.yaml measures each method where it shows something, not every combination:
    still every kind of method (and the quantization modes), every CPU format, every kind
    of model source, and TensorRT planned (skipped only for want of TensorRT or a GPU)."""
    import yaml

    matrix = yaml.safe_load((MATRIX_DIR / "edge.yaml").read_text())
    methods = {m["name"]: m for m in matrix["methods"]}
    sources = {m["name"]: m["source"].partition(":")[0] for m in matrix["models"]}
    plan = json.loads(run_cli("plan", str(MATRIX_DIR / "edge.yaml"), "--json").stdout)
    cpu = [c for c in plan["cells"] if c["device"] == "intel-cpu"]

    def family(name: str) -> str:
        spec = methods[re.sub(r"-p\d+$", "", name)]
        return "chain" if "chain" in spec else spec["kind"] + ":" + str(
            spec.get("mode") or spec.get("structure") or spec.get("dtype") or "")

    assert {family(c["method"]) for c in cpu} == {family(m) for m in methods}
    assert {c["format"] for c in cpu} == {"torch", "onnx", "openvino", "tflite"}
    assert {sources[c["model"]] for c in cpu} == set(sources.values())
    tensorrt = [s for s in plan["skipped"] if s["format"] == "tensorrt"
                and s["device"] == "nvidia-gpu"]
    planned = {s["method"] for s in tensorrt if "excluded" not in s["reason"]}
    assert {"fp32", "int8"} <= planned, planned


def test_plan_tells_the_cells_the_matrix_excludes_once(tmp_path):
    out = run_cli("plan", str(MATRIX_DIR / "edge.yaml"))
    assert out.returncode == 0
    [line] = [line for line in out.stdout.splitlines() if "excluded by the matrix" in line]
    assert "exclude [0-" in line  # the rules as spans, not one line per rule


MODEL = ("name: x\nmodels: [{{name: a, source: {source}, {extra}}}]\n"
         "methods: [{{name: f, kind: baseline}}]\nformats: [onnx]\ndevices: [intel-cpu]\n")
BROKEN_MODEL = "def build():\n    raise RuntimeError('this factory always fails')\n"

BAD = {
    "typo.yaml": ("name: x\nmodels: []\nmethods: []\nformats: [onnx]\ndevices: [intel-cpu]\n"
                  "measur: {}\n", "measur"),
    "badfmt.yaml": ("name: x\nmodels: [{name: a, source: 'builtin:digits_cnn'}]\n"
                    "methods: [{name: f, kind: baseline}]\nformats: [onnxx]\n"
                    "devices: [intel-cpu]\n", "formats[0]"),
    "notyaml.yaml": ("name: [\n", "not valid YAML"),
    # models that cannot be built are refused at plan time, before anything runs
    "arch.yaml": (MODEL.format(source="'torchvision:resnet19'", extra="input_shape: [3, 32, 32]"),
                  "models[0].source: torchvision 0.29.1 has no model 'resnet19'"),
    "weights.yaml": (MODEL.format(source="'torchvision:resnet18'",
                                  extra="input_shape: [3, 32, 32], weights: missing.pt"),
                     "models[0].weights:"),
    "factory.yaml": (MODEL.format(source="'module:broken_model:build'",
                                  extra="input_shape: [3, 32, 32]"),
                     "models[0].source: module:broken_model:build cannot be built: "
                     "RuntimeError: this factory always fails"),
    "nofactory.yaml": (MODEL.format(source="'module:broken_model:nothing'",
                                    extra="input_shape: [3, 32, 32]"),
                       "broken_model has no callable 'nothing'"),
    "nomodule.yaml": (MODEL.format(source="'module:no_such_module:build'",
                                   extra="input_shape: [3, 32, 32]"),
                      "ModuleNotFoundError"),
    "builtin.yaml": (MODEL.format(source="'builtin:digits_rnn'", extra="dataset: digits"),
                     "unknown builtin model 'digits_rnn' (allowed: builtin:digits_cnn)"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_matrix_exits_2_without_traceback(tmp_path, name):
    text, fragment = BAD[name]
    path = tmp_path / name
    path.write_text(text)
    (tmp_path / "broken_model.py").write_text(BROKEN_MODEL)  # next to the matrix
    for command in ("plan", "sweep"):
        out = run_cli(command, str(path), "--db", str(tmp_path / "r.duckdb")) \
            if command == "sweep" else run_cli(command, str(path))
        assert out.returncode == 2, out
        assert "Traceback" not in out.stderr + out.stdout
        assert str(path) in out.stderr and fragment in out.stderr, out.stderr
    assert not (tmp_path / "r.duckdb").exists(), "bad input must not create a database"


def test_missing_matrix_file():
    out = run_cli("plan", "no/such/file.yaml")
    assert out.returncode == 2 and "not found" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("args", [("sweep",), ("plan",), ("query",), ("frobnicate",),
                                  ("query", "select 1", "--format", "xml")])
def test_bad_flags_exit_2(args):
    out = run_cli(*args)
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_query_on_a_missing_database(tmp_path):
    out = run_cli("query", "select 1", "--db", str(tmp_path / "none.duckdb"))
    assert out.returncode == 2 and "no results database" in out.stderr


def test_doctor_names_the_kinds_runtimes_and_sensors_and_why_not():
    import platform

    out = run_cli("doctor", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert "intel-cpu" in report["hardware_kinds"]
    assert "version" in report["runtimes"]["onnxruntime"]
    for name, entry in report["runtimes"].items():
        assert entry.get("version") or entry.get("reason"), name
    for name, entry in report["sensors"].items():
        assert entry.get("name") or entry.get("reason"), name
    table = run_cli("doctor")
    assert table.returncode == 0 and "runtimes" in table.stdout and "energy sensors" in table.stdout
    for kind, reason in report["missing_kinds"].items():
        assert kind in table.stdout


def test_the_cluster_example_matrix_plans_gpu_cells():
    from tests.conftest import REPO

    out = run_cli("plan", str(REPO / "examples" / "cluster.yaml"), "--json")
    assert out.returncode == 0, out.stderr
    cells = {c["cell_id"] for c in json.loads(out.stdout)["cells"]}
    assert "digits-cnn/fp32/torch/nvidia-gpu" in cells  # the torch CUDA agent's cell

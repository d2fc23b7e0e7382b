"""A sweep over models as users bring them: a transformers folder (int64 token ids and a
mask, a swept sequence length; once more with the length fixed), the user's own module
taking int64 ids (through every runtime installed here, LiteRT included), an ONNX file with
labelled data, and an ONNX file with three named inputs (an int64 scalar without a batch
axis, a state whose batch is its second axis, a swept frame count). Real Ray, real
converters and runtimes; one DuckDB file."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli
from tests.integration.conftest import query

pytestmark = pytest.mark.integration

MATRIX = """
name: anymodel
models:
  - {name: bert, source: 'hf:tiny-bert', task: classification}
  - name: bert16
    source: hf:tiny-bert
    task: embedding
    inputs:
      input_ids: {shape: [batch, 16], dtype: int64, range: [0, 100]}
      attention_mask: {shape: [batch, 16], dtype: int64, fill: 1}
  - name: pixels
    source: module:pixels:make
    task: classification
    inputs:
      pixels: {shape: [batch, 1, 32, 32], dtype: int64, range: [0, 17]}
  - {name: digits, source: 'onnx:digits_cnn.onnx', dataset: digits}
  - name: speech
    source: onnx:speech_kws.onnx
    inputs:
      sample_rate: {shape: [], dtype: int64, fill: 16000}
      state: {shape: [2, batch, 64], fill: 0}
methods:
  - {name: fp32, kind: baseline}
  - {name: int8-dyn, kind: quantize, mode: dynamic}
  - {name: int8, kind: quantize, mode: static, calibration: {samples: 32}}
formats: [onnx, openvino, torch, tflite]
devices: [intel-cpu]
measure:
  batch_sizes: [1, 2]
  shapes: {seq: [8, 24], frames: [10, 30]}
  warmup_s: 0.05
  min_iterations: 5
  min_seconds: 0.05
  max_seconds: 0.5
"""


# The user's own module taking int64 values: pixel intensities 0..16, as scikit-learn's
# digits store them, into a small digits CNN. Nothing but a cast before the convolutions:
# litert-torch 0.10 converts little else with a dynamic batch (its JAX lowerings need
# concrete sizes for arithmetic on the input, a linear layer on it, an embedding lookup,
# a reshape of the batch).
PIXELS = """
import torch

from harness.models.digits_cnn import DigitsCNN


class Pixels(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.cnn = DigitsCNN(width=8)

    def forward(self, pixels):
        return self.cnn(pixels.to(torch.float32))


def make():
    torch.manual_seed(0)
    return Pixels()
"""


@pytest.fixture(scope="module")
def any_sweep(tmp_path_factory, model_files, cache_dir):
    folder = tmp_path_factory.mktemp("anymodel")
    for name in ("tiny-bert", "digits_cnn.onnx", "speech_kws.onnx"):
        (folder / name).symlink_to(model_files / name)
    (folder / "pixels.py").write_text(PIXELS)
    matrix = folder / "any.yaml"
    matrix.write_text(MATRIX)
    plan = json.loads(run_cli("plan", str(matrix), "--json").stdout)
    db = folder / "any.duckdb"
    out = run_cli("sweep", str(matrix), "--db", str(db), "--cache", str(cache_dir),
                  timeout=1500)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    return db, plan


def test_every_planned_cell_measures(any_sweep):
    db, plan = any_sweep
    rows = query(db, "select cell_id, status, error from cells where status <> 'skipped'")
    assert {r["cell_id"] for r in rows} == {c["cell_id"] for c in plan["cells"]}
    assert all(r["status"] == "ok" for r in rows), [r for r in rows if r["status"] != "ok"]
    formats = {(c["model"], c["format"]) for c in plan["cells"]}
    # int64 inputs through every runtime installed here
    assert {f for m, f in formats if m == "pixels"} == {"onnx", "openvino", "torch", "tflite"}
    assert {f for m, f in formats if m == "bert16"} == {"onnx", "openvino", "torch"}
    assert {f for m, f in formats if m == "speech"} == {"onnx", "openvino"}


def test_one_row_per_batch_and_shape(any_sweep):
    db, _ = any_sweep
    rows = query(db, "select model, format, method, list(distinct shape order by shape) as "
                     "shapes, count(*) as n from results where status = 'ok' group by all")
    for r in rows:
        want = {"bert": ["seq=24", "seq=8"], "bert16": [""], "pixels": [""], "digits": [""],
                "speech": ["frames=10", "frames=30"]}[r["model"]]
        assert r["shapes"] == want, r
        assert r["n"] == 2 * len(want)  # batch 1 and 2


def test_quality_is_the_tasks_metric(any_sweep):
    db, _ = any_sweep
    rows = query(db, "select model, precision, quality, quality_metric, reference_quality, "
                     "quality_threshold from results where status = 'ok'")
    for r in rows:
        metric = {"bert": "fidelity_cosine_min", "bert16": "cosine_min",
                  "pixels": "fidelity_cosine_min", "digits": "top1",
                  "speech": "fidelity_cosine_min"}[r["model"]]
        assert r["quality_metric"] == metric and r["quality"] is not None, r
        if metric == "top1":
            assert r["quality"] >= 0.95 and r["reference_quality"] >= 0.95
            assert r["quality_threshold"] is None
        else:
            assert r["reference_quality"] is None
            assert r["quality"] >= r["quality_threshold"], r


def test_every_output_has_its_metrics(any_sweep):
    db, _ = any_sweep
    names = {r["name"] for r in query(
        db, "select distinct name from metrics where cell_id like 'speech/%'")}
    # the speech model has two outputs: logits per frame and the next state
    assert {"out0_cosine_min", "out1_cosine_min", "out0_sqnr_db", "out1_max_abs_err"} <= names


def test_model_files_skip_what_needs_a_module_with_the_reason(any_sweep):
    db, _ = any_sweep
    rows = query(db, "select cell_id, error from cells where status = 'skipped' and "
                     "cell_id like 'speech/%'")
    assert {r["cell_id"] for r in rows} == {f"speech/{m}/{f}/intel-cpu" for m in
                                            ("fp32", "int8-dyn", "int8")
                                            for f in ("torch", "tflite")}
    assert all("model file" in r["error"] for r in rows)


def test_transformers_in_tflite_are_refused_with_the_reason(any_sweep):
    db, _ = any_sweep
    rows = query(db, "select cell_id, error from cells where cell_id like 'bert%/tflite/%'")
    assert len(rows) == 6 and all(r["error"] and "litert-torch" in r["error"] for r in rows)

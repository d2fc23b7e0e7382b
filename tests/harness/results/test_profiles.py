"""Per-layer profiles in the results database: storage and roll-up views, lining up two
variants, the generated explanation, `harness profile` and the report's section. The
layers are written as the worker reports them (agents/probes/profile.py)."""

import json

import pytest

from harness.matrix.expand import Cell
from harness.results import profiles
from harness.results.store import Store, open_read_only
from tests.conftest import run_cli


def _layers(spec):
    total = sum(ms for _, _, _, ms in spec)
    return [{"order": k, "layer": name, "op_type": op, "exec_type": "CPU", "precision": prec,
             "time_ms": ms, "share": ms / total} for k, (name, op, prec, ms) in enumerate(spec)]


FP32_LAYERS = _layers([("relu_nchwc", "Conv", "fp32", 0.2), ("pool", "MaxPool", "fp32", 0.1),
                       ("relu_1_nchwc", "Conv", "fp32", 0.6), ("fc", "Gemm", "fp32", 0.1)])
INT8_LAYERS = _layers([("in_q", "DynamicQuantizeLinear", "fp32", 0.05),
                       ("c0_quant", "ConvInteger", "int8", 0.8),
                       ("c0_cast", "Cast", "int32", 0.05), ("pool", "MaxPool", "fp32", 0.1),
                       ("c1_quant", "ConvInteger", "int8", 2.9),
                       ("fc_quant", "DynamicQuantizeMatMul", "int8", 0.1)])


def _variant(variant_id, method, precision, kind):
    return {"variant_id": variant_id, "model": "m", "method": method,
            "method_config": [{"kind": kind}], "format": "onnx", "precision": precision,
            "runtime": "onnxruntime", "artifact_path": "/x", "sha256": "ab", "size_bytes": 1,
            "build_seconds": 1.0, "parity": {"ok": True, "suspect": False}, "toolchain": {}}


def _row(layers, precision, p50, reason=None):
    profile = ({"reason": reason, "layers": []} if reason else
               {"source": "onnxruntime 1 enable_profiling", "runs": 10, "layers": layers,
                "total_ms": sum(x["time_ms"] for x in layers), "reason": None})
    return {"batch_size": 1, "threads": 1, "precision": precision, "latency_p50_ms": p50,
            "iterations": 3, "samples_ms": [p50] * 3, "profile": profile}


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "r.duckdb"
    store = Store(path)
    store.start_run({"run_id": "r1", "matrix_name": "t"})
    store.write_variant(_variant("v1", "fp32", "fp32", "baseline"))
    store.write_variant(_variant("v2", "int8-dyn", "int8", "quantize"))
    store.write_variant(_variant("v3", "fp16", "fp16", "cast") | {"format": "tflite"})
    store.write_cell("r1", Cell("m", "fp32", "onnx", "intel-cpu"), status="ok",
                     variant_id="v1", measurements=[_row(FP32_LAYERS, "fp32", 1.0)])
    store.write_cell("r1", Cell("m", "int8-dyn", "onnx", "intel-cpu"), status="ok",
                     variant_id="v2", measurements=[_row(INT8_LAYERS, "int8", 4.0)])
    store.write_cell("r1", Cell("m", "fp16", "tflite", "intel-cpu"), status="ok",
                     variant_id="v3",
                     measurements=[_row([], "fp32", 2.0, reason="no per-op timing here")])
    store.finish_run("r1", "ok")
    store.close()
    return path


def test_layers_and_the_roll_up_views_are_stored(db):
    con = open_read_only(db)
    rows = con.execute("SELECT cell_id, count(*), sum(share) FROM op_profiles "
                       "GROUP BY 1 ORDER BY 1").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("m/fp32/onnx/intel-cpu", 4),
                                            ("m/int8-dyn/onnx/intel-cpu", 6)]
    assert all(r[2] == pytest.approx(1.0) for r in rows)
    int8 = con.execute("SELECT share FROM precision_profile WHERE method = 'int8-dyn' "
                       "AND precision = 'int8'").fetchone()[0]
    assert int8 == pytest.approx(3.8 / 4.0)
    conv = con.execute("SELECT layers, time_ms FROM op_type_profile WHERE method = 'int8-dyn' "
                       "AND op_type = 'ConvInteger'").fetchone()
    assert conv == (2, pytest.approx(3.7))
    notes = con.execute("SELECT method, profile_runs, profile_total_ms, profile_note "
                        "FROM results ORDER BY method").fetchall()
    assert notes[0] == ("fp16", None, None, "no per-op timing here")  # a reason, no figures
    assert notes[1][1:3] == (10, pytest.approx(1.0))


def test_variants_line_up_by_their_compute_layers_whatever_their_names():
    how, rows = profiles.diff(FP32_LAYERS, INT8_LAYERS)
    assert "position of the 3 compute layers" in how
    assert [(r["a_layer"], r["b_layer"]) for r in rows] == [
        (None, "(before the first compute layer)"), ("relu_nchwc", "c0_quant"),
        ("relu_1_nchwc", "c1_quant"), ("fc", "fc_quant")]
    first = rows[1]  # c0's segment carries its Cast and the MaxPool after it
    assert first["b_ms"] == pytest.approx(0.95) and first["a_ms"] == pytest.approx(0.3)
    assert first["verdict"] == "slower" and rows[3]["verdict"] == "same"


def test_layers_line_up_by_shapes_when_the_runtimes_order_them_differently():
    """ORT's fp32 graph runs NCHWc convs that report their weights; its int8 graph runs
    NHWC QLinearConvs whose prepacked weights it does not report, and runs a block's
    downsample conv before its first conv. Position would pair a 1x1 conv with a 3x3 one;
    layout-free input and output shapes pair them, and where two layers have the same
    shapes (first conv and downsample), the pairing that keeps time ratios closest to the
    run's wins."""
    def layers(spec):
        out = _layers([(n, op, p, ms) for n, op, p, ms, _ in spec])
        return [x | {"shapes": sh} for x, (*_, sh) in zip(out, spec)]
    a = layers([("conv1", "Conv", "fp32", 2.0, "1x64x56x56;128x64x3x3->1x128x28x28"),
                ("down", "Conv", "fp32", 0.2, "1x64x56x56;128x64x1x1->1x128x28x28"),
                ("conv2", "Conv", "fp32", 2.0, "1x128x28x28;128x128x3x3->1x128x28x28")])
    b = layers([("q_down", "QLinearConv", "int8", 0.05, "1x56x56x64->1x28x28x128"),
                ("q_conv1", "QLinearConv", "int8", 0.5, "1x56x56x64->1x28x28x128"),
                ("q_conv2", "QLinearConv", "int8", 0.5, "1x28x28x128->1x28x28x128")])
    how, rows = profiles.diff(a, b)
    assert how.startswith("3 of 3 compute layers by shapes")
    pairs = [(r["a_layer"], r["b_layer"]) for r in rows]
    assert ("conv1", "q_conv1") in pairs and ("down", "q_down") in pairs
    assert ("conv2", "q_conv2") in pairs
    assert all(r["ratio"] == pytest.approx(0.25) for r in rows if r["a_layer"])


def test_layers_line_up_by_name_where_the_runtime_keeps_names():
    a = _layers([("Multiply_1", "Convolution", "fp32", 2.0), ("Multiply_2", "Convolution",
                 "fp32", 1.0), ("pool", "MaxPool", "fp32", 0.1)])
    b = _layers([("Multiply_2", "Convolution", "int8", 0.3), ("Multiply_1", "Convolution",
                 "int8", 0.5), ("fq", "FakeQuantize", "int8", 0.1)])
    how, rows = profiles.diff(a, b)
    assert how.startswith("2 of 2 compute layers by name")
    assert {(r["a_layer"], r["b_layer"]) for r in rows} == {("Multiply_1", "Multiply_1"),
                                                           ("Multiply_2", "Multiply_2")}


def test_different_architectures_line_up_by_name():
    other = _layers([("pool", "MaxPool", "fp32", 0.1), ("x", "Conv", "fp32", 0.5)])
    how, rows = profiles.diff(FP32_LAYERS, other)
    assert "by layer name" in how
    assert {r["verdict"] for r in rows if r["a_layer"] == "pool"} == {"same"}
    assert [r["b_layer"] for r in rows if r["verdict"] == "only in B"] == ["x"]


def test_compute_layers_include_int8_kernels_but_not_quantize_steps():
    for op in ("Conv", "ConvInteger", "QLinearConv", "DynamicQuantizeMatMul", "FullyConnected",
               "aten::linear", "onednn::qconv2d_pointwise", "aten::addmm", "QLinearMatMul",
               "onednn::qlinear_pointwise", "QGemm", "MatMulInteger"):
        assert profiles.is_compute(op), op
    for op in ("DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear", "MaxPool",
               "quantized_decomposed::quantize_per_tensor", "Relu", "QLinearAdd",
               "QLinearGlobalAveragePool"):
        assert not profiles.is_compute(op), op


def test_the_explanation_states_what_the_figures_show():
    text = profiles.explain("int8-dyn/onnx", INT8_LAYERS, 4.0, "fp32/onnx", FP32_LAYERS, 1.0)
    assert text == ("int8-dyn/onnx: ConvInteger takes 92% of the run; 95% of the run is in "
                    "int8 kernels; fp32/onnx Conv took 80% of a 4.0x shorter run")
    assert profiles.explain("fp32/onnx", FP32_LAYERS, 1.0).endswith("no time in int8 kernels")


def test_profile_cli_prints_hotspots_roll_ups_diffs_and_runs(db):
    out = run_cli("profile", "m/int8-dyn/onnx/intel-cpu", "--db", str(db), "--top", "2")
    assert out.returncode == 0, out.stderr
    lines = out.stdout
    assert "c1_quant" in lines and "c0_quant" in lines and "fc_quant" not in lines
    assert "2 of 6 layers shown" in lines and "ConvInteger takes 92%" in lines

    out = run_cli("profile", "m/int8-dyn/onnx/intel-cpu", "--db", str(db), "--by", "precision",
                  "--format", "json")
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["layers"]) == 6

    out = run_cli("profile", "m/fp32/onnx/intel-cpu", "--diff", "m/int8-dyn/onnx/intel-cpu",
                  "--db", str(db))
    assert out.returncode == 0, out.stderr
    assert "matched by position of the 3 compute layers" in out.stdout
    assert "fp32/onnx Conv took 80% of a 4.0x shorter run" in out.stdout

    out = run_cli("profile", "r1", "--db", str(db))
    assert out.returncode == 0, out.stderr
    assert "no per-op timing here" in out.stdout and "ConvInteger" in out.stdout

    out = run_cli("profile", "m/fp16/tflite/intel-cpu", "--db", str(db))
    assert out.returncode == 0 and "no per-layer profile: no per-op timing here" in out.stdout


def test_profile_cli_refuses_an_unknown_cell_clearly(db):
    out = run_cli("profile", "m/nope/onnx/intel-cpu", "--db", str(db))
    assert out.returncode == 2
    assert "no profiled cell 'm/nope/onnx/intel-cpu'" in out.stderr
    assert "m/fp32/onnx/intel-cpu" in out.stderr and "Traceback" not in out.stderr


def test_the_report_explains_each_model_with_a_figure(db, tmp_path):
    from harness.results.report import write_report

    con = open_read_only(db)
    html = write_report(con, "r1", tmp_path / "r.html").read_text()
    section = html.split("per-layer profiles</h2>")[1].split("<h2>")[0]
    assert '<img alt="op-type breakdown: m on intel-cpu"' in section
    assert ("int8-dyn/onnx: ConvInteger takes 92% of the run; 95% of the run is in int8 "
            "kernels; fp32/onnx Conv took 80% of a 4.0x shorter run") in section
    assert "No profile for fp16/tflite: no per-op timing here" in section

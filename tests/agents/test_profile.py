"""Per-layer profiles: the pure logic (medians, shares, precisions, ORT's trace), and every
installed runtime's own profiler on the digits CNN through the worker."""

import pytest

from agents.probes.profile import LayerTime, ProfileUnavailable, precision_of, summarize_runs
from agents.runtimes.onnxruntime_profile import runs_from_trace
from harness.matrix.schema import BaselineMethod, ModelSpec, QuantizeMethod
from tests.packs import manifest_payload

DIGITS = ModelSpec(name="digits-cnn", source="builtin:digits_cnn", dataset="digits")
FP32 = BaselineMethod(name="fp32", kind="baseline")
STATIC = QuantizeMethod(name="int8", kind="quantize", mode="static")
MEASURE = {"batch_sizes": [1, 4], "threads": 1, "warmup_s": 0.05, "min_iterations": 20,
           "min_seconds": 0.1, "max_seconds": 1.0, "ci_rel_width": 0.05, "accuracy": False,
           "timeout_s": 300, "profile": True, "profile_runs": 3}


def test_precision_is_the_narrowest_numeric_input_type():
    assert precision_of(["uint8", "int8", "int32"]) == "int8"      # ConvInteger
    assert precision_of(["float", "int64"]) == "fp32"               # Reshape
    assert precision_of(["c10::Half", "float"]) == "fp16"
    assert precision_of(["int32"]) == "int32"                       # an accumulator cast
    assert precision_of(["int64", ""]) is None


def test_summary_takes_medians_per_layer_and_shares_of_their_sum():
    def run(conv_ms, relu_ms):
        return [LayerTime("conv", "Conv", "CPU", "fp32", conv_ms),
                LayerTime("relu", "Relu", "CPU", "fp32", relu_ms),
                LayerTime("conv", "Conv", "CPU", "fp32", 1.0)]  # a name seen twice
    profile = summarize_runs([run(3.0, 1.0), run(5.0, 1.0), run(4.0, 9.0)], "test")
    layers = profile["layers"]
    assert [(x["layer"], x["time_ms"]) for x in layers] == [("conv", 4.0), ("relu", 1.0),
                                                           ("conv", 1.0)]
    assert [x["order"] for x in layers] == [0, 1, 2]
    assert sum(x["share"] for x in layers) == pytest.approx(1.0)
    assert profile["total_ms"] == 7.0 and profile["runs"] == 3  # median of 5, 7, 14


def test_a_profiler_that_reports_nothing_is_a_reason_not_an_empty_table():
    with pytest.raises(ProfileUnavailable, match="no executed layers"):
        summarize_runs([[], []], "test")


def test_ort_trace_nodes_are_split_by_run_and_warm_up_runs_can_be_dropped():
    def node(name, ts, dur, op, types):
        return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur,
                "args": {"op_name": op, "provider": "CPUExecutionProvider",
                         "input_type_shape": [{t: [1]} for t in types]}}
    events = [{"cat": "Session", "name": "model_run", "ts": 0, "dur": 100},
              node("conv", 10, 50, "ConvInteger", ["uint8", "int8"]),
              {"cat": "Node", "name": "conv_fence_before", "ts": 9, "dur": 1},
              {"cat": "Session", "name": "model_run", "ts": 200, "dur": 100},
              node("conv", 210, 40, "ConvInteger", ["uint8", "int8"]),
              node("mul", 260, 5, "Mul", ["float", "float"])]
    runs = runs_from_trace(events)
    assert [[x.layer for x in r] for r in runs] == [["conv"], ["conv", "mul"]]
    second = runs[1]
    assert second[0] == LayerTime("conv", "ConvInteger", "CPU", "int8", 0.04)
    assert second[1].precision == "fp32"
    # the warm-up run dropped: its node belongs to no kept run, the kept run is whole
    assert runs_from_trace(events, skip=1) == [second]
    assert runs_from_trace(events, skip=2) == []


def test_openvino_exec_types_name_their_precision():
    from agents.runtimes.openvino_profile import exec_precision

    assert exec_precision("brgconv_avx512_I8") == "int8"
    assert exec_precision("jit_uni_f32") == "fp32"
    assert exec_precision("ref_any_bf16") == "bf16"
    assert exec_precision("undef") is None


def _build(format_name, step, cache_dir):
    from harness.build.variant import VariantRequest, build_variant
    return build_variant(VariantRequest(model=DIGITS, method=step.name, steps=(step,),
                                        format=format_name, base_dir=str(cache_dir),
                                        cache_dir=str(cache_dir)))


CASES = [("onnx", FP32), ("onnx", STATIC), ("openvino", FP32), ("openvino", STATIC),
         ("torch", FP32), ("torch", STATIC)]


@pytest.mark.integration
@pytest.mark.parametrize("format_name,step", CASES, ids=[f"{f}-{s.name}" for f, s in CASES])
def test_every_runtime_profiles_the_digits_cnn_layer_by_layer(format_name, step, cache_dir):
    from agents.launcher import run_cell

    manifest = _build(format_name, step, cache_dir)
    result = run_cell(manifest_payload(manifest, MEASURE), timeout_s=300)
    assert result.ok, result.error
    assert len(result.measurements) == 2  # batch 1 and 4, each profiled
    for row in result.measurements:
        profile = row["profile"]
        assert profile["reason"] is None, profile["reason"]
        assert profile["runs"] == 3 and profile["source"].startswith(manifest["runtime"])
        layers = profile["layers"]
        assert len(layers) >= 4
        assert all(x["layer"] and x["op_type"] for x in layers)
        assert all(x["time_ms"] >= 0 for x in layers)
        assert sum(x["share"] for x in layers) == pytest.approx(1.0)
        assert profile["total_ms"] > 0
        # the convolutions are there, and an int8 cell's run in int8 as the runtime
        # reports it (not which layer is slowest: that depends on the host's CPU)
        convs = [x for x in layers if "conv" in x["op_type"].lower()]
        assert convs, [x["op_type"] for x in layers]
        if row["precision"] == "int8":
            int8 = [x for x in convs if x["precision"] == "int8"]
            assert 2 * len(int8) > len(convs), convs


@pytest.mark.integration
def test_litert_stores_why_it_has_no_profile(cache_dir):
    from agents.launcher import run_cell

    manifest = _build("tflite", FP32, cache_dir)
    result = run_cell(manifest_payload(manifest, MEASURE), timeout_s=300)
    assert result.ok, result.error
    for row in result.measurements:
        assert row["profile"]["layers"] == []
        assert "exposes no per-op timing" in row["profile"]["reason"]
        assert row["latency_p50_ms"] > 0  # the cell's own figures are untouched


@pytest.mark.integration
def test_without_measure_profile_there_is_no_profile_pass(cache_dir):
    from agents.launcher import run_cell

    manifest = _build("onnx", FP32, cache_dir)
    result = run_cell(manifest_payload(manifest, MEASURE | {"profile": False}), timeout_s=120)
    assert result.ok and all("profile" not in row for row in result.measurements)

"""Reading a TensorRT engine's precision from its inspector's JSON. The JSON below is written
by hand in the documented shape of IEngineInspector's output (LayerInformationFormat.JSON,
detailed verbosity), not captured from an engine: TensorRT cannot run on these machines."""

import json

from agents.runtimes.tensorrt_layers import engine_precision, layer_precisions


def layer(kind, *datatypes):
    return {"Name": kind, "LayerType": kind,
            "Inputs": [{"Name": f"in{i}", "Format/Datatype": d} for i, d in enumerate(datatypes)],
            "Outputs": [{"Name": "out", "Format/Datatype": datatypes[0]}]}


def engine(*layers):
    return json.dumps({"Layers": list(layers), "Bindings": ["input", "logits"]})


def test_an_fp16_engine_with_an_fp32_reformat_reads_fp16():
    counts = layer_precisions(engine(
        layer("Reformat", "Row major linear FP32 format"),
        layer("CaskConvolution", "Channel major FP16 format where channel % 8 == 0"),
        layer("CaskConvolution", "Half"),
        layer("CaskGemmMatrixMultiply", "Row major linear FP16 format")))
    assert counts == {"fp16": 3}          # the reformat is not a compute layer
    assert engine_precision(counts, "fp32") == "fp16"


def test_int8_convolutions_on_int8_inputs_read_int8_and_float_fallbacks_are_counted():
    counts = layer_precisions(engine(
        layer("CaskConvolution", "Row major Int8 format"),
        layer("CaskConvolution", "Channel major INT8 format where channel % 32 == 0"),
        layer("CaskConvolution", "Row major linear FP32 format")))
    assert counts == {"int8": 2, "fp32": 1}
    assert engine_precision(counts, "int8") == "int8"


def test_an_engine_without_layer_information_keeps_the_requested_precision():
    counts = layer_precisions(json.dumps({"Layers": ["conv1", "relu1"]}))  # names only
    assert not counts and engine_precision(counts, "fp16") == "fp16"


def test_per_layer_details_for_the_profiler_rows():
    """What a TensorRT profile row takes from the inspector under IProfiler's layer name:
    the layer's type, tactic and precision (names-only engines give nothing to add)."""
    from agents.runtimes.tensorrt_layers import layer_details

    conv = layer("CaskConvolution", "Row major Int8 format") | {
        "Name": "conv1 + relu1", "TacticName": "sm90_xmma_fprop_implicit_gemm_int8"}
    details = layer_details(engine(conv, layer("Reformat", "Row major linear FP32 format")))
    assert details["conv1 + relu1"] == {"op_type": "CaskConvolution", "precision": "int8",
                                        "tactic": "sm90_xmma_fprop_implicit_gemm_int8"}
    assert details["Reformat"]["precision"] == "fp32"
    assert layer_details(json.dumps({"Layers": ["conv1", "relu1"]})) == {}

"""What a TensorRT engine runs in, layer by layer, from its engine inspector's JSON (no
TensorRT import here, so it is testable anywhere). Each layer lists its inputs with a
"Format/Datatype" such as "Row major linear FP16 format" (with an execution context set) or
"Half" (without)."""

from __future__ import annotations

import json
from collections import Counter

# Substrings of a layer's "Format/Datatype" (verbose or abbreviated) -> precision; checked
# in this order ("Int8" before "float": some int8 formats mention float scales)
DATATYPES = (("int8", "int8"), ("fp8", "fp8"), ("bf16", "bf16"), ("bfloat", "bf16"),
             ("fp16", "fp16"), ("half", "fp16"), ("fp32", "fp32"), ("float", "fp32"))
COMPUTE_LAYERS = ("convolution", "matrixmultiply", "gemm", "fullyconnected", "myelin",
                  "foreign", "deconvolution")


def _datatype(binding: dict) -> str | None:
    text = str(binding.get("Format/Datatype", "")).lower()
    return next((name for token, name in DATATYPES if token in text), None)


def _layer_precision(layer: dict) -> str | None:
    """A layer's compute precision: its narrowest input type (int8 conv on int8 inputs)."""
    found = {_datatype(b) for b in layer.get("Inputs", []) if _datatype(b)}
    return next((name for name in ("int8", "fp8", "bf16", "fp16", "fp32") if name in found),
                None)


def layer_details(engine_json: str) -> dict[str, dict]:
    """Per layer name: its type and precision (what a per-layer profile row needs beside the
    time IProfiler reports under the same name)."""
    layers = json.loads(engine_json).get("Layers", [])
    return {str(layer.get("Name")): {"op_type": str(layer.get("LayerType", "?")),
                                     "precision": _layer_precision(layer),
                                     "tactic": layer.get("TacticName") or layer.get("Tactic")}
            for layer in layers if isinstance(layer, dict)}


def layer_precisions(engine_json: str) -> Counter:
    """How many compute layers of the engine take inputs of each precision (all layers when
    the engine reports no compute layer by type)."""
    layers = json.loads(engine_json).get("Layers", [])
    layers = [layer for layer in layers if isinstance(layer, dict)]
    compute = [layer for layer in layers
               if any(k in str(layer.get("LayerType", "")).lower() for k in COMPUTE_LAYERS)]
    counts: Counter = Counter()
    for layer in compute or layers:
        precision = _layer_precision(layer)
        if precision:
            counts[precision] += 1
    return counts


def engine_precision(counts: Counter, requested: str) -> str:
    """The precision most compute layers run in; the requested one when the inspector gave
    no layer information (an engine built without detailed verbosity)."""
    if not counts:
        return requested
    return counts.most_common(1)[0][0]

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


def layer_precisions(engine_json: str) -> Counter:
    """How many compute layers of the engine take inputs of each precision (all layers when
    the engine reports no compute layer by type)."""
    layers = json.loads(engine_json).get("Layers", [])
    layers = [layer for layer in layers if isinstance(layer, dict)]
    compute = [layer for layer in layers
               if any(k in str(layer.get("LayerType", "")).lower() for k in COMPUTE_LAYERS)]
    counts: Counter = Counter()
    for layer in compute or layers:
        found = {_datatype(b) for b in layer.get("Inputs", []) if _datatype(b)}
        # a layer's compute precision: its narrowest input type (int8 conv on int8 inputs)
        for name in ("int8", "fp8", "bf16", "fp16", "fp32"):
            if name in found:
                counts[name] += 1
                break
    return counts


def engine_precision(counts: Counter, requested: str) -> str:
    """The precision most compute layers run in; the requested one when the inspector gave
    no layer information (an engine built without detailed verbosity)."""
    if not counts:
        return requested
    return counts.most_common(1)[0][0]

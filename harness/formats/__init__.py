"""The format registry: one line per format. Heavy imports happen inside each format's
functions, so importing the registry is cheap."""

from __future__ import annotations

from harness.formats.base import Format
from harness.formats.onnx_format import OnnxFormat
from harness.formats.openvino_format import OpenVinoFormat
from harness.formats.tensorrt_format import TensorRtFormat
from harness.formats.tflite_format import TfliteFormat
from harness.formats.torch_format import TorchFormat

FORMATS: dict[str, Format] = {f.name: f for f in (
    TorchFormat(), OnnxFormat(), OpenVinoFormat(), TfliteFormat(), TensorRtFormat())}

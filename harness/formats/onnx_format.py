"""ONNX: one-file export (opset 18), checked and shape-inferred; int8 with ONNX Runtime's
quantizer (dynamic, or static QDQ with calibration after quant_pre_process).

Model-level steps:
- cast fp16: the mixed-precision wrapper exports as an fp16 graph with Cast nodes at the
  float32 input and output. ONNX Runtime's CPU provider runs it; where it has no fp16
  kernel (x86: none for Conv / Gemm) its InsertCastTransformer computes that node in fp32,
  and the ORT session reports the precision it actually computes in.
- cast bf16: skipped (BF16_SKIP).
- qat: the converted PT2E graph exports its quantize / dequantize ops as QuantizeLinear /
  DequantizeLinear (QDQ); ONNX Runtime fuses them into QLinearConv. The export checks that
  they survived. Symmetric activations are skipped (QAT_SYMMETRIC_SKIP)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import logging
import tempfile
from pathlib import Path

import numpy as np

from harness.formats.base import Format
from harness.models.dims import batch_dim

if TYPE_CHECKING:  # annotations only: torch is imported where it is used
    import torch

OPSET = 18
INPUT_NAME = "input"
CALIB_BATCH = 16


class _CalibrationReader:
    """ORT's CalibrationDataReader protocol over a numpy array."""

    def __init__(self, x: np.ndarray):
        self._batches = iter([{INPUT_NAME: x[i:i + CALIB_BATCH]} for i in range(0, len(x),
                                                                                  CALIB_BATCH)])

    def get_next(self):
        return next(self._batches, None)


BF16_SKIP = ("onnx: bf16 is not realised: ONNX's Conv has no bfloat16 type at opset 18 "
             "(ONNX Runtime rejects the exported graph as invalid) and ONNX Runtime's CPU "
             "provider has no bf16 conv / gemm kernels")

QAT_SYMMETRIC_SKIP = (
    "onnx: qat with symmetric activations is not realised: the PT2E graph quantizes after "
    "each ReLU, and ONNX Runtime folds Conv + ReLU into QLinearConv only when the zero "
    "point is the ReLU floor (affine); with a symmetric zero point every conv stays float "
    "between Q/DQ pairs, slower than the fp32 model. Use scheme symmetric: false")
# (README, "What each format realises", has the figures measured for the digits CNN.)


def count_ops(path: Path, op_type: str) -> int:
    import onnx
    return sum(n.op_type == op_type for n in onnx.load(str(path)).graph.node)


class OnnxFormat(Format):
    name = "onnx"
    runtime = "onnxruntime"
    devices = ("intel-cpu", "arm-edge")
    extension = ".onnx"
    options = {"opset": OPSET, "dynamic_batch": True, "external_data": False}
    int8_saturation = True  # MLAS's U8S8 kernels without VNNI; quantizers' reduce_range

    def supports(self, step) -> str | None:
        if step.kind == "quantize" and step.mode in ("dynamic", "static"):
            return None
        return super().supports(step)

    def supports_traits(self, traits: dict) -> str | None:
        if traits.get("dtype") == "bf16":
            return BF16_SKIP
        if traits.get("qdq") and traits["qdq"]["activations"]["symmetric"]:
            return QAT_SYMMETRIC_SKIP
        return None

    def toolchain(self) -> dict:
        import torch
        import onnx
        import onnxruntime
        import onnxscript
        return {"torch": torch.__version__, "onnx": onnx.__version__,
                "onnxscript": onnxscript.__version__, "onnxruntime": onnxruntime.__version__}

    def export(self, model: torch.nn.Module, example: torch.Tensor, out: Path) -> None:
        import torch
        import onnx

        # The dynamo exporter logs a lot at INFO/WARNING; the checker below is what matters.
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        torch.onnx.export(model, (example,), str(out), dynamo=True, opset_version=OPSET,
                          external_data=False, input_names=[INPUT_NAME], output_names=["logits"],
                          dynamic_shapes=(batch_dim(),), verbose=False)
        proto = onnx.load(str(out))
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(onnx.shape_inference.infer_shapes(proto), str(out))
        self._check_qat(model, out)

    @staticmethod
    def _check_qat(model: torch.nn.Module, out: Path) -> None:
        from harness.models.traits import traits_of

        if traits_of(model).qdq is not None and count_ops(out, "QuantizeLinear") == 0:
            raise RuntimeError("the ONNX export of a QAT model has no QuantizeLinear nodes: "
                               "the artifact would be float under an int8 name")

    def quantize(self, step, src: Path, out: Path, calib_x: np.ndarray) -> dict:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        with tempfile.TemporaryDirectory() as tmp:
            # ORT's recommended pre-processing: symbolic shape inference and graph
            # optimisation first, so the quantizer sees fused Conv+BN and known shapes.
            prepared = Path(tmp) / "prepared.onnx"
            quant_pre_process(str(src), str(prepared))
            if step.mode == "dynamic":
                return self._quantize_dynamic(step, prepared, out)
            return self._quantize_static(step, prepared, out, calib_x)

    def _quantize_dynamic(self, step, src: Path, out: Path) -> dict:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        symmetric, per_channel = step.scheme.symmetric, step.scheme.per_channel
        # ORT computes activation ranges at run time (uint8); the scheme sets the weights.
        weight_type = QuantType.QInt8 if symmetric else QuantType.QUInt8
        reduce_range = step.scheme.reduce_range is True
        quantize_dynamic(str(src), str(out), weight_type=weight_type, per_channel=per_channel,
                         reduce_range=reduce_range,
                         extra_options={"WeightSymmetric": symmetric})
        return {"quantizer": "onnxruntime.quantize_dynamic", "weight_type": weight_type.name,
                "per_channel": per_channel, "symmetric": symmetric,
                "reduce_range": reduce_range}

    def _quantize_static(self, step, src: Path, out: Path, calib_x: np.ndarray) -> dict:
        from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                              quantize_static)

        symmetric, per_channel = step.scheme.symmetric, step.scheme.per_channel
        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[step.calibration.method]
        samples = calib_x[:step.calibration.samples]
        activation_type = (QuantType.QUInt8 if step.scheme.activation_dtype == "uint8"
                           else QuantType.QInt8)
        reduce_range = step.scheme.reduce_range is True
        quantize_static(str(src), str(out), _CalibrationReader(samples),
                        quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        reduce_range=reduce_range,
                        activation_type=activation_type, weight_type=QuantType.QInt8,
                        calibrate_method=method,
                        extra_options={"ActivationSymmetric": symmetric,
                                       "WeightSymmetric": symmetric})
        return {"quantizer": "onnxruntime.quantize_static", "format": "QDQ",
                "activation_type": activation_type.name, "weight_type": "QInt8",
                "per_channel": per_channel, "symmetric": symmetric,
                "reduce_range": reduce_range,
                "calibration_method": step.calibration.method,
                "calibration_samples": int(len(samples))}

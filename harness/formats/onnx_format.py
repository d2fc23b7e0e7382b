"""ONNX: one-file export (opset 18), checked and shape-inferred; int8 with ONNX Runtime's
quantizer (dynamic, or static QDQ with calibration after quant_pre_process)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import torch

from harness.formats.base import Format, batch_dim

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


class OnnxFormat(Format):
    name = "onnx"
    runtime = "onnxruntime"
    devices = ("intel-cpu", "arm-edge")
    extension = ".onnx"
    options = {"opset": OPSET, "dynamic_batch": True, "external_data": False}

    def supports(self, step) -> str | None:
        if step.kind == "quantize" and step.mode in ("dynamic", "static"):
            return None
        return super().supports(step)

    def toolchain(self) -> dict:
        import onnx
        import onnxruntime
        import onnxscript
        return {"torch": torch.__version__, "onnx": onnx.__version__,
                "onnxscript": onnxscript.__version__, "onnxruntime": onnxruntime.__version__}

    def export(self, model: torch.nn.Module, example: torch.Tensor, out: Path) -> None:
        import onnx

        # The dynamo exporter logs a lot at INFO/WARNING; the checker below is what matters.
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        torch.onnx.export(model, (example,), str(out), dynamo=True, opset_version=OPSET,
                          external_data=False, input_names=[INPUT_NAME], output_names=["logits"],
                          dynamic_shapes=(batch_dim(),), verbose=False)
        proto = onnx.load(str(out))
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(onnx.shape_inference.infer_shapes(proto), str(out))

    def quantize(self, step, src: Path, out: Path, calib_x: np.ndarray) -> dict:
        from onnxruntime.quantization import QuantType, quantize_dynamic

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
        quantize_dynamic(str(src), str(out), weight_type=weight_type, per_channel=per_channel,
                         extra_options={"WeightSymmetric": symmetric})
        return {"quantizer": "onnxruntime.quantize_dynamic", "weight_type": weight_type.name,
                "per_channel": per_channel, "symmetric": symmetric}

    def _quantize_static(self, step, src: Path, out: Path, calib_x: np.ndarray) -> dict:
        from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                              quantize_static)

        symmetric, per_channel = step.scheme.symmetric, step.scheme.per_channel
        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[step.calibration.method]
        samples = calib_x[:step.calibration.samples]
        activation_type = (QuantType.QUInt8 if step.scheme.activation_dtype == "uint8"
                           else QuantType.QInt8)
        quantize_static(str(src), str(out), _CalibrationReader(samples),
                        quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=activation_type, weight_type=QuantType.QInt8,
                        calibrate_method=method,
                        extra_options={"ActivationSymmetric": symmetric,
                                       "WeightSymmetric": symmetric})
        return {"quantizer": "onnxruntime.quantize_static", "format": "QDQ",
                "activation_type": activation_type.name, "weight_type": "QInt8",
                "per_channel": per_channel, "symmetric": symmetric,
                "calibration_method": step.calibration.method,
                "calibration_samples": int(len(samples))}

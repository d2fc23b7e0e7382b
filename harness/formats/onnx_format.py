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

import contextlib
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from agents.arrays import contiguous
from harness.formats.base import Format

if TYPE_CHECKING:  # annotations only: torch is imported where it is used
    import torch

OPSET = 18
CALIB_BATCH = 16


def calibration_batches(calib: dict[str, np.ndarray], inputs, samples: int,
                        batch: int = CALIB_BATCH) -> list[dict[str, np.ndarray]]:
    """The first `samples` calibration samples as batches of named inputs (an input without
    a batch axis is fed as it is in every batch)."""
    from agents.evalpack import samples_in

    total = min(samples, samples_in(inputs, calib))
    batches = []
    for start in range(0, total, batch):
        index = np.arange(start, min(start + batch, total))
        batches.append({s.name: contiguous(
            calib[s.name] if s.batch_axis is None
            else np.take(calib[s.name], index, axis=s.batch_axis)) for s in inputs})
    return batches


def count_samples(batches: list[dict], inputs) -> int:
    """Samples in calibration batches (along the first batched input's batch axis)."""
    batched = next((s for s in inputs if s.batch_axis is not None), None)
    if batched is None:
        return len(batches)
    return sum(int(b[batched.name].shape[batched.batch_axis]) for b in batches)


class _CalibrationReader:
    """ORT's CalibrationDataReader protocol over batches of named inputs."""

    def __init__(self, batches: list[dict]):
        self._batches = iter(batches)

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


def _real_inputs(proto) -> list:
    """Graph inputs that are not initializers (older exporters list both)."""
    weights = {init.name for init in proto.graph.initializer}
    return [i for i in proto.graph.input if i.name not in weights]


def count_ops(path: Path, op_type: str) -> int:
    import onnx
    return sum(n.op_type == op_type for n in onnx.load(str(path)).graph.node)


class OnnxFormat(Format):
    name = "onnx"
    runtime = "onnxruntime"
    # nvidia-gpu: ONNX Runtime's CUDA provider on a GPU agent with onnxruntime-gpu
    devices = ("intel-cpu", "arm-edge", "nvidia-gpu")
    extension = ".onnx"
    options = {"opset": OPSET, "dynamic_axes": "named", "external_data": False}
    int8_saturation = True  # MLAS's U8S8 kernels without VNNI; quantizers' reduce_range
    from_onnx = True

    def supports(self, step) -> str | None:
        if step.kind == "quantize" and step.mode in ("dynamic", "static"):
            return None
        return super().supports(step)

    def runs_on(self, device: str, precision: str) -> str | None:
        if device == "nvidia-gpu" and precision not in ("fp32", "fp16"):
            return (f"format 'onnx': ONNX Runtime's CUDA provider has no {precision} conv / "
                    "matmul kernels (a QDQ or integer-op graph would run dequantized or on "
                    "the CPU); use tensorrt for int8 on nvidia-gpu")
        return None

    def supports_traits(self, traits: dict) -> str | None:
        if traits.get("dtype") == "bf16":
            return BF16_SKIP
        if traits.get("qdq") and traits["qdq"]["activations"]["symmetric"]:
            return QAT_SYMMETRIC_SKIP
        return None

    def toolchain(self) -> dict:
        import onnx
        import onnxruntime
        import onnxscript
        import torch
        return {"torch": torch.__version__, "onnx": onnx.__version__,
                "onnxscript": onnxscript.__version__, "onnxruntime": onnxruntime.__version__}

    def export(self, model: torch.nn.Module, example: tuple, out: Path, spec) -> None:
        """torch's dynamo exporter with every named dim dynamic; the graph's dims then
        carry the inputs' axis names (batch, seq, ...)."""
        import onnx
        import torch

        from harness.models.dims import dynamic_shapes, name_onnx_dims

        # The dynamo exporter logs a lot at INFO/WARNING; the checker below is what matters.
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        torch.onnx.export(model, tuple(example), str(out), dynamo=True, opset_version=OPSET,
                          external_data=False, input_names=spec.names,
                          dynamic_shapes=dynamic_shapes(spec.inputs, model), verbose=False)
        proto = onnx.load(str(out))
        name_onnx_dims(proto, spec.inputs)
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(onnx.shape_inference.infer_shapes(proto), str(out))
        self._check_qat(model, out)

    def convert_file(self, src: Path, out: Path, spec) -> None:
        """An existing ONNX file as one checked file: its external data inlined, its dynamic
        dims named (or pinned) as the matrix declares them."""
        import onnx

        proto = onnx.load(str(src))  # external data files are read in
        for graph_input, input_spec in zip(_real_inputs(proto), spec.inputs):
            for dim, want in zip(graph_input.type.tensor_type.shape.dim, input_spec.dims):
                if isinstance(want, str):
                    dim.dim_param = want
                elif not (dim.HasField("dim_value") and dim.dim_value == want):
                    dim.dim_value = want
        onnx.checker.check_model(proto)
        proto = onnx.shape_inference.infer_shapes(proto)
        if proto.ByteSize() >= 2**31:
            raise RuntimeError(f"{src} holds {proto.ByteSize() / 2**30:.1f} GB: over protobuf's "
                               "2 GB for one file (external-data artifacts are not built yet)")
        onnx.save(proto, str(out))

    @staticmethod
    def _check_qat(model: torch.nn.Module, out: Path) -> None:
        from harness.models.traits import traits_of

        if traits_of(model).qdq is not None and count_ops(out, "QuantizeLinear") == 0:
            raise RuntimeError("the ONNX export of a QAT model has no QuantizeLinear nodes: "
                               "the artifact would be float under an int8 name")

    def quantize(self, step, src: Path, out: Path, calib: dict, spec) -> dict:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        with tempfile.TemporaryDirectory() as tmp:
            # ORT's recommended pre-processing: symbolic shape inference and graph
            # optimisation first, so the quantizer sees fused Conv+BN and known shapes.
            # Symbolic inference gives up on some exported transformers (dynamic sequence
            # lengths through reshapes): then the graph is prepared without it, and the
            # details say so.
            prepared = Path(tmp) / "prepared.onnx"
            symbolic = True
            try:
                # On failure ORT saves its half-inferred model as sym_shape_infer_temp.onnx
                # (+ external data) in the working directory: keep that inside tmp.
                with contextlib.chdir(tmp):
                    quant_pre_process(str(Path(src).resolve()), str(prepared))
            except Exception:  # noqa: BLE001 - ORT raises a bare Exception here
                symbolic = False
                quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
            if step.mode == "dynamic":
                details = self._quantize_dynamic(step, prepared, out)
            else:
                details = self._quantize_static(step, prepared, out, calib, spec)
            return details | {"pre_process": "quant_pre_process" + (
                "" if symbolic else " without symbolic shape inference (it failed)")}

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

    def _quantize_static(self, step, src: Path, out: Path, calib: dict, spec) -> dict:
        from onnxruntime.quantization import (
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )

        symmetric, per_channel = step.scheme.symmetric, step.scheme.per_channel
        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[step.calibration.method]
        batches = calibration_batches(calib, spec.inputs, step.calibration.samples)
        samples = count_samples(batches, spec.inputs)
        activation_type = (QuantType.QUInt8 if step.scheme.activation_dtype == "uint8"
                           else QuantType.QInt8)
        reduce_range = step.scheme.reduce_range is True
        quantize_static(str(src), str(out), _CalibrationReader(batches),
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
                "calibration_samples": int(samples)}

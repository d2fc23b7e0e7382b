"""OpenVINO IR (model.xml + model.bin): exported through `torch.export` and `ov.convert_model`
with a dynamic batch dimension and fp32 weights; int8 with NNCF, OpenVINO's own quantizer.

- quantize static: `nncf.quantize` (post-training, FakeQuantize ops; the CPU plugin runs the
  quantized convolutions and matmuls in int8 on u8 activations), calibrated on the dataset's
  calibration split. Full bias correction, not NNCF's default fast one: on the digits CNN the
  fast one cut the output SQNR from 29 to 12 dB (min cosine 0.89, under int8 parity; 25 dB
  with none); on random-init resnet18, 27.4 dB full against 26.0 dB fast.
- quantize dynamic: `nncf.compress_weights` (int8 weights, per output channel). Activations
  stay floating point: on the CPU plugin convolutions decompress the weights at compile time
  and compute in f32; fully connected / MatMul layers run int8 with activations quantized at
  run time (DYNAMIC_QUANTIZATION_GROUP_SIZE). The details say `weights_only: true`.

Model-level steps:
- cast fp16 / bf16: the IR of the fp32 twin of the cast model (the same dtype-rounded
  weights; fp16 ones stored as f16 constants, OpenVINO's fp16 IR) run with
  INFERENCE_PRECISION_HINT f16 / bf16, set by the runtime from the variant's precision. The
  CPU plugin decides what it can run: on a CPU without fp16 arithmetic it computes an f16
  hint in f32, and the session reports the precision actually used.
- qat: the converted PT2E graph goes through its QDQ ONNX export (OpenVINO's PyTorch
  frontend cannot convert the converted graph's int8 weight constants) and `convert_model`
  turns the QuantizeLinear / DequantizeLinear pairs into FakeQuantize: u8 convolutions.

What cannot be realised is a skip with the reason (`supports`), never a silent substitute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from importlib import metadata
from pathlib import Path


from harness.formats.base import Format

if TYPE_CHECKING:  # annotations only: torch is imported where it is used
    import torch

OUTPUT_NAME = "logits"

ENTROPY_SKIP = ("openvino: NNCF 3.4 has no entropy (KL-divergence) calibration; its range "
                "estimators are min/max, mean min/max, quantile and a histogram search that "
                "minimises the L2 quantization error, not KL. Use minmax or percentile")
SIGNED_ACTIVATIONS_SKIP = (
    "openvino: activation_dtype int8 cannot be forced: NNCF's hardware config rejects signed "
    "activation quantizers on convolutions (signedness_to_force), and OpenVINO's CPU plugin "
    "runs quantized convolutions on u8 activations. Use activation_dtype uint8")
SIGNED_QAT_SKIP = (
    "openvino: qat with activation_dtype int8 is not realised: OpenVINO's CPU plugin runs "
    "quantized convolutions on u8 activations. Use activation_dtype uint8")
PER_TENSOR_DYNAMIC_SKIP = (
    "openvino: NNCF weight compression (dynamic int8) quantizes weights per output channel "
    "only; there is no per-tensor int8 mode. Use per_channel: true")


def _is_int8_constant(op) -> bool:
    return (op.get_type_name() == "Constant"
            and op.get_output_element_type(0).get_type_name() in ("i8", "u8"))


class OpenVinoFormat(Format):
    name = "openvino"
    runtime = "openvino"
    devices = ("intel-cpu", "arm-edge")
    extension = ".xml"
    companions = (".bin",)
    options = {"ir": "torch.export+convert_model", "compress_to_fp16": False,
               "dynamic_axes": "named", "nncf_fast_bias_correction": False}
    int8_saturation = True  # the CPU plugin's u8 x s8 kernels; NNCF's overflow fix
    from_onnx = True

    def unavailable(self) -> str | None:
        from importlib.util import find_spec
        missing = [m for m in ("openvino", "nncf") if find_spec(m) is None]
        return (f"openvino: {' and '.join(missing)} not installed (pip install openvino nncf)"
                if missing else None)

    def supports(self, step) -> str | None:
        if step.kind != "quantize":
            return super().supports(step)
        if step.mode == "dynamic":
            return None if step.scheme.per_channel else PER_TENSOR_DYNAMIC_SKIP
        if step.mode == "static":
            if step.calibration.method == "entropy":
                return ENTROPY_SKIP
            if step.scheme.activation_dtype == "int8":
                return SIGNED_ACTIVATIONS_SKIP
            return None
        return super().supports(step)

    def supports_traits(self, traits: dict) -> str | None:
        if traits.get("qdq") and traits["qdq"]["activations"]["dtype"] == "int8":
            return SIGNED_QAT_SKIP
        return None

    def toolchain(self) -> dict:
        import torch
        import openvino as ov
        # nncf's own import costs seconds; its installed version is what shapes the artifact.
        return {"torch": torch.__version__, "openvino": ov.__version__,
                "nncf": metadata.version("nncf")}

    def export(self, model: torch.nn.Module, example: tuple, out: Path, spec) -> None:
        import tempfile

        import openvino as ov
        import torch

        from harness.models.dims import dynamic_shapes
        from harness.models.traits import traits_of

        traits = traits_of(model)
        dtype = traits.dtype
        if traits.qdq is not None:
            from harness.formats.onnx_format import OnnxFormat
            with tempfile.TemporaryDirectory() as tmp:
                qdq = Path(tmp) / "qat.onnx"
                OnnxFormat().export(model, example, qdq, spec)
                converted = ov.convert_model(str(qdq))
            if not any(op.get_type_name() == "FakeQuantize"
                       for op in converted.get_ordered_ops()):
                raise RuntimeError("openvino: the QAT model's IR has no FakeQuantize op")
        else:
            if dtype is not None:
                model = model.float32_twin()
            program = torch.export.export(model, tuple(example),
                                          dynamic_shapes=dynamic_shapes(spec.inputs, model))
            converted = ov.convert_model(program)
        _name_and_shape(converted, spec)
        # save_model compresses weights to fp16 by default: an fp32 baseline must not; an
        # fp16 cast's weights are fp16 values already, stored as such (exactly).
        ov.save_model(converted, str(out), compress_to_fp16=dtype == "fp16")

    def convert_file(self, src: Path, out: Path, spec) -> None:
        """An ONNX file through OpenVINO's converter, its inputs shaped as declared."""
        import openvino as ov

        converted = ov.convert_model(str(src))
        _name_and_shape(converted, spec)
        ov.save_model(converted, str(out), compress_to_fp16=False)

    def quantize(self, step, src: Path, out: Path, calib: dict, spec) -> dict:
        import logging

        import nncf
        import openvino as ov

        nncf.set_log_level(logging.WARNING)  # its INFO tables; the details below say it all

        model = ov.Core().read_model(str(src))
        if step.mode == "dynamic":
            result, details = self._compress_weights(step, model)
        else:
            result, details = self._quantize_static(step, model, calib, spec)
        ov.save_model(result, str(out), compress_to_fp16=False)
        return details

    def _compress_weights(self, step, model) -> tuple[object, dict]:
        import nncf

        symmetric = step.scheme.symmetric
        mode = nncf.CompressWeightsMode.INT8_SYM if symmetric else nncf.CompressWeightsMode.INT8_ASYM
        before = _float_weights(model)
        result = nncf.compress_weights(model, mode=mode)
        compressed = before - _float_weights(result)
        if compressed <= 0:
            raise RuntimeError("nncf.compress_weights compressed no weights of this model: "
                               "the artifact would be the fp32 model under an int8 name")
        return result, {
            "quantizer": "nncf.compress_weights", "mode": mode.value, "weights_only": True,
            "weights": "int8", "activations": "fp32 (convolutions compute in f32 on the "
                                              "decompressed weights; fully connected / MatMul "
                                              "layers quantize activations at run time)",
            "symmetric": symmetric, "per_channel": True, "scale_dtype": "f16",
            "reduce_range": "not applied: weight compression keeps activations in float "
                            "for convolutions (no u8 x s8 products)",
            "compressed_weights": int(compressed)}

    def _quantize_static(self, step, model, calib: dict, spec) -> tuple[object, dict]:
        import nncf
        from nncf.quantization.advanced_parameters import (AdvancedQuantizationParameters,
                                                           OverflowFix,
                                                           QuantizationParameters)
        from nncf.quantization.range_estimator import RangeEstimatorParametersSet

        symmetric, per_channel = step.scheme.symmetric, step.scheme.per_channel
        from harness.formats.onnx_format import calibration_batches

        # One sample per item, so NNCF's per-sample statistics are per sample; items are
        # dicts by input name (the IR's input names)
        samples = calibration_batches(calib, spec.inputs, step.calibration.samples, batch=1)
        dataset = nncf.Dataset(samples)
        if step.calibration.method == "minmax":
            # NNCF's default for per-tensor activations is MEAN_MINMAX (the mean of per-sample
            # extremes); minmax means the global extremes, as ONNX Runtime's MinMax.
            estimator, estimator_name = RangeEstimatorParametersSet.MINMAX, "MINMAX"
        else:  # percentile (entropy is refused by supports())
            # The mean over images of each image's 0.01% / 99.99% quantiles.
            estimator = RangeEstimatorParametersSet.MEAN_QUANTILE
            prob = estimator.max.quantile_outlier_prob
            estimator_name = f"MEAN_QUANTILE(outlier_prob={prob})"
        # PERFORMANCE: symmetric weights and activations. MIXED: asymmetric activations,
        # symmetric weights: asymmetric (zero-point) weights make the CPU plugin run those
        # convolutions in f32 (measured: 1.08 ms against 0.38 ms for the digits CNN).
        preset = (nncf.QuantizationPreset.PERFORMANCE if symmetric
                  else nncf.QuantizationPreset.MIXED)
        # reduce_range: NNCF's overflow fix (weights on half the int8 range, every layer)
        overflow = (OverflowFix.ENABLE if step.scheme.reduce_range is True
                    else OverflowFix.DISABLE)
        advanced = AdvancedQuantizationParameters(
            activations_range_estimator_params=estimator, overflow_fix=overflow,
            weights_quantization_params=QuantizationParameters(per_channel=per_channel))
        result = nncf.quantize(model, dataset, preset=preset, subset_size=len(samples),
                               fast_bias_correction=self.options["nncf_fast_bias_correction"],
                               advanced_parameters=advanced)
        fake_quantize = sum(op.get_type_name() == "FakeQuantize"
                            for op in result.get_ordered_ops())
        int8_weights = sum(_is_int8_constant(op) for op in result.get_ordered_ops())
        if fake_quantize == 0:
            raise RuntimeError("nncf.quantize inserted no FakeQuantize op into this model")
        return result, {
            "quantizer": "nncf.quantize", "preset": preset.value, "weights_only": False,
            "target_device": "ANY", "symmetric": symmetric,
            "weights": {"dtype": "int8", "symmetric": True, "per_channel": per_channel},
            "activations": {"symmetric": symmetric, "per_channel": False,
                            "dtype": "uint8 (CPU plugin; signedness chosen from the range)"},
            "calibration_method": step.calibration.method,
            "overflow_fix": overflow.value, "reduce_range": step.scheme.reduce_range is True,
            "range_estimator": estimator_name,
            "calibration_samples": len(samples),
            "bias_correction": ("fast" if self.options["nncf_fast_bias_correction"]
                                else "full"),
            "fake_quantize_ops": int(fake_quantize), "int8_weight_constants": int(int8_weights)}



def _name_and_shape(converted, spec) -> None:
    """The IR's inputs named as the model's and shaped as declared: named dims dynamic
    (-1), the rest fixed (torch.export leaves every dim of an input dynamic)."""
    import openvino as ov

    if len(converted.inputs) != len(spec.inputs):
        raise RuntimeError(f"openvino: the IR has {len(converted.inputs)} inputs, the model "
                           f"{len(spec.inputs)}")
    shapes = {}
    for port, input_spec in zip(converted.inputs, spec.inputs):
        port.get_tensor().set_names({input_spec.name})
        shapes[port] = ov.PartialShape([-1 if isinstance(d, str) else d
                                        for d in input_spec.dims])
    converted.reshape(shapes)
    if len(converted.outputs) == 1:
        converted.outputs[0].get_tensor().set_names({OUTPUT_NAME})


def _float_weights(model) -> int:
    """Floating-point constants of rank >= 2: the weights (biases and scalars are rank <= 1;
    NNCF's per-channel scales are f16, its compressed weights i8/u8)."""
    return sum(op.get_type_name() == "Constant"
               and op.get_output_element_type(0).get_type_name() == "f32"
               and op.get_output_partial_shape(0).rank.get_length() >= 2
               for op in model.get_ordered_ops())

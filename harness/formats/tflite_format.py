"""TFLite / LiteRT: litert-torch conversion with a dynamic batch dimension; int8 with
ai-edge-quantizer (dynamic-range weights, or full int8 with min/max calibration).

Dynamic batch: litert-torch lowers `aten.view` through JAX, which needs concrete sizes, so
a plain `dynamic_shapes` conversion fails on every `flatten` (`view(x, [batch, 128])`). The
export below runs torch.export with a dynamic batch, decomposes to core ATen, and rewrites
each view/reshape whose target size has exactly one symbolic entry to `-1` there (same
element count, so the same tensor); litert-torch then converts a model whose input is
`[-1, C, H, W]` and the runtime resizes it to any batch. A model that still has symbolic
sizes elsewhere fails to convert, with litert-torch's error: a batch-specialised model
would only run at batch 2 (its RESHAPE constants pin the batch).

Full int8 keeps float32 inputs and outputs: the quantizer leaves the model's INPUT/OUTPUT
unquantized and puts QUANTIZE / DEQUANTIZE ops at the edges, so the runtime converts
in-graph (as ONNX Runtime does for QDQ models) and the harness feeds float like every other
format. The agent runtime also runs int8-I/O models (quantizing with the input's scale and
zero point), e.g. ones built with `_quantize_static(..., float_io=False)`.

Model-level steps: cast fp16 exports the cast model's fp32 twin and stores the conv / fully
connected weights in fp16 with ai-edge-quantizer's float casting (DEQUANTIZE to float32 in
the graph). XNNPACK computes in fp32 (fp16 arithmetic only where the delegate is forced to
it on ARM), and the LiteRT session reports fp32. cast bf16 and qat are skipped with their
reasons (BF16_SKIP, QAT_SKIP).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import contextlib
import os
import warnings
from pathlib import Path

import numpy as np

from harness.formats.base import Format

if TYPE_CHECKING:  # annotations only: torch is imported where it is used
    import torch

CALIB_BATCH = 16
QUANTIZER_THREADS = 2
PROGRESS_ENV = "LITERT_TORCH_SHOW_PROGRESS"


def batch_agnostic_views(graph_module: torch.fx.GraphModule) -> int:
    """Rewrite view/reshape target sizes with exactly one symbolic entry to -1 there.
    Returns how many nodes changed."""
    import torch
    targets = {torch.ops.aten.view.default, torch.ops.aten.reshape.default,
               torch.ops.aten._unsafe_view.default}
    changed = 0
    for node in graph_module.graph.nodes:
        if node.op != "call_function" or node.target not in targets or len(node.args) < 2:
            continue
        size = list(node.args[1])
        symbolic = [i for i, s in enumerate(size) if not isinstance(s, int)]
        if len(symbolic) == 1 and -1 not in size:
            size[symbolic[0]] = -1
            node.args = (node.args[0], size, *node.args[2:])
            changed += 1
    if changed:
        graph_module.graph.eliminate_dead_code()
        graph_module.recompile()
    return changed


@contextlib.contextmanager
def _quiet_converter():
    """litert-torch prints a progress tree per conversion unless told otherwise."""
    before = os.environ.get(PROGRESS_ENV)
    os.environ[PROGRESS_ENV] = "n"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = before


def _signature(model_path: Path, count: int) -> tuple[str, list[str]]:
    """(signature key, its inputs' names in the model's order: args_0, args_1, ...): what
    ai-edge-quantizer's calibrate() keys its data by."""
    import re

    from ai_edge_litert.interpreter import Interpreter

    signatures = Interpreter(model_path=str(model_path)).get_signature_list()
    if len(signatures) != 1:
        raise ValueError(f"{model_path}: expected one signature, found {list(signatures)}")
    key, io = next(iter(signatures.items()))
    names = sorted(io["inputs"], key=lambda n: int(re.search(r"(\d+)$", n).group(1))
                   if re.search(r"(\d+)$", n) else 0)
    if len(names) != count:
        raise ValueError(f"{model_path}: expected {count} inputs, found {io['inputs']}")
    return key, names


def _litert_dtype(array: np.ndarray) -> np.ndarray:
    """LiteRT's converter stores 64-bit integer inputs as int32 (enable_x64 off)."""
    return array.astype(np.int32) if array.dtype == np.int64 else array


def _count(batches: list[dict], inputs) -> int:
    from harness.formats.onnx_format import count_samples
    return count_samples(batches, inputs)


def _io_dtypes(model_path: Path) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model_path))
    ins = [np.dtype(d["dtype"]).name for d in interpreter.get_input_details()]
    outs = [np.dtype(d["dtype"]).name for d in interpreter.get_output_details()]
    if len(ins) == len(outs) == 1:
        return {"input": ins[0], "output": outs[0]}
    return {"inputs": ins, "outputs": outs}


def _granularity(per_channel: bool):
    from ai_edge_quantizer import qtyping
    return (qtyping.QuantGranularity.CHANNELWISE if per_channel
            else qtyping.QuantGranularity.TENSORWISE)


def _quantize_dynamic(src: Path, out: Path, per_channel: bool) -> dict:
    from ai_edge_quantizer import qtyping, quantizer

    q = quantizer.Quantizer(str(src))
    q.add_dynamic_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                         num_bits=8, granularity=_granularity(per_channel))
    result = q.quantize(enable_progress_report=False, enable_progress_bar=False)
    result.export_model(str(out), overwrite=True)
    return {"quantizer": "ai_edge_quantizer", "recipe": "dynamic_wi8_afp32",
            "weights": "int8 symmetric", "per_channel": per_channel,
            "activations": "float32 in the model, quantized to int8 at run time by the kernels",
            "io": _io_dtypes(out)}


def _quantize_static(src: Path, out: Path, batches: list[dict], inputs, *, symmetric: bool,
                     per_channel: bool, float_io: bool = True) -> dict:
    from ai_edge_quantizer import (algorithm_manager, calibrator, qtyping, quantizer,
                                   recipe_manager)
    from ai_edge_quantizer.utils import qsv_utils

    q = quantizer.Quantizer(str(src))
    # static_wi8_ai8 with the scheme's knobs: LiteRT's int8 kernels take symmetric int8
    # weights (per channel or per tensor) and per-tensor int8 activations, symmetric
    # (zero point 0) or not.
    config = qtyping.OpQuantizationConfig(
        activation_tensor_config=qtyping.TensorQuantizationConfig(
            num_bits=8, symmetric=symmetric, granularity=qtyping.QuantGranularity.TENSORWISE),
        weight_tensor_config=qtyping.TensorQuantizationConfig(
            num_bits=8, symmetric=True, granularity=_granularity(per_channel)),
        compute_precision=qtyping.ComputePrecision.INTEGER, explicit_dequantize=False)
    q.update_quantization_recipe(regex=".*",
                                 operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                                 op_config=config)
    if float_io:
        for edge in (qtyping.TFLOperationName.INPUT, qtyping.TFLOperationName.OUTPUT):
            q.update_quantization_recipe(
                regex=".*", operation_name=edge,
                algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)
    recipe = recipe_manager.RecipeManager()
    recipe.load_quantization_recipe(q.get_quantization_recipe())
    key, names = _signature(src, len(inputs))
    # Quantizer.calibrate() smooths min/max with a moving average across calibration steps;
    # `minmax` is the global min/max over the samples, as ONNX Runtime's MinMax computes.
    data = {key: [{name: _litert_dtype(batch[spec.name])
                   for name, spec in zip(names, inputs)} for batch in batches]}
    with warnings.catch_warnings():
        # "experimental_preserve_all_tensors is for debugging": calibration needs it.
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
        calib = calibrator.Calibrator(str(src), num_threads=QUANTIZER_THREADS,
                                      qsv_update_func=qsv_utils.min_max_update)
        calib.calibrate(data, recipe)
        result = q.quantize(calibration_result=calib.get_model_qsvs(),
                            enable_progress_report=False, enable_progress_bar=False)
    result.export_model(str(out), overwrite=True)
    return {"quantizer": "ai_edge_quantizer", "recipe": "static_wi8_ai8",
            "weights": "int8 symmetric", "per_channel": per_channel,
            "activations": "int8 per tensor, " + ("symmetric (zero point 0)" if symmetric
                                                  else "asymmetric"),
            "activation_type": "int8", "symmetric": symmetric,
            "calibration_method": "minmax",
            "calibration_samples": _count(batches, inputs),
            "io": _io_dtypes(out),
            "io_note": ("float32 I/O with QUANTIZE/DEQUANTIZE ops in the graph" if float_io
                        else "int8 I/O: the runtime quantizes inputs and dequantizes outputs")}


BF16_SKIP = ("tflite: bf16 is not realised: LiteRT's CPU kernels and XNNPACK have no bf16 "
             "compute, and ai-edge-quantizer's float casting stores fp16 weights only")
QAT_SKIP = ("tflite: qat is not realised: litert-torch cannot convert the converted PT2E "
            "graph of the X86 quantizer (its int8 weight constants fail in "
            "stablehlo.uniform_dequantize); LiteRT int8 comes from the quantize step "
            "(ai-edge-quantizer)")


def _fp16_weights(src: Path, out: Path) -> dict:
    from ai_edge_quantizer import qtyping, quantizer

    q = quantizer.Quantizer(str(src))
    q.update_quantization_recipe(
        regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
        op_config=qtyping.OpQuantizationConfig(
            weight_tensor_config=qtyping.TensorQuantizationConfig(
                num_bits=16, dtype=qtyping.TensorDataType.FLOAT),
            compute_precision=qtyping.ComputePrecision.FLOAT, explicit_dequantize=True),
        algorithm_key="float_casting")
    result = q.quantize(enable_progress_report=False, enable_progress_bar=False)
    result.export_model(str(out), overwrite=True)
    return {"quantizer": "ai_edge_quantizer", "algorithm": "float_casting",
            "weights": "fp16 (conv / fully connected)", "io": _io_dtypes(out)}


class TfliteFormat(Format):
    name = "tflite"
    runtime = "litert"
    devices = ("intel-cpu", "arm-edge")
    extension = ".tflite"
    options = {"converter": "litert_torch.convert", "dynamic_axes": "batch only",
               "batch_agnostic_views": True, "input_layout": "NCHW",
               "int8_io": "float32 (quantize/dequantize in the graph)"}

    def supports(self, step) -> str | None:
        if step.kind != "quantize" or step.mode not in ("dynamic", "static"):
            return super().supports(step)
        if not step.scheme.symmetric and step.mode == "dynamic":
            return ("format 'tflite': LiteRT's dynamic-range kernels take symmetric int8 "
                    "weights only (scheme.symmetric: false has no realisation)")
        if step.mode == "static" and step.calibration.method != "minmax":
            return (f"format 'tflite': ai-edge-quantizer calibrates activations by min/max "
                    f"only (no {step.calibration.method} calibration)")
        return None

    def supports_traits(self, traits: dict) -> str | None:
        if traits.get("dtype") == "bf16":
            return BF16_SKIP
        if traits.get("qdq"):
            return QAT_SKIP
        return None

    def toolchain(self) -> dict:
        import torch
        from importlib.metadata import version
        return {"torch": torch.__version__, "litert-torch": version("litert-torch"),
                "ai-edge-litert": version("ai-edge-litert"),
                "ai-edge-quantizer": version("ai-edge-quantizer")}

    def supports_model(self, facts) -> str | None:
        reason = super().supports_model(facts)
        if reason:
            return reason
        if facts.axes:
            return (f"format 'tflite': litert-torch cannot make axis {facts.axes[0]!r} dynamic "
                    f"(its view lowering needs concrete sizes; only the batch is made "
                    f"dynamic)")
        if facts.source == "hf":
            # seen with litert-torch 0.10 on BERT: its int64 -> int32 pass fails on
            # arange(batch), and with that worked around its expand lowering on the
            # batch-sized masks
            return ("format 'tflite': litert-torch cannot convert transformers' attention "
                    "mask code with a dynamic batch (an arange over the batch, expands to "
                    "batch-sized masks); only static shapes would convert")
        return None

    def export(self, model: torch.nn.Module, example: tuple, out: Path, spec) -> None:
        from harness.models.traits import traits_of

        if traits_of(model).dtype == "fp16":
            fp32 = out.with_name(out.stem + ".fp32" + out.suffix)
            try:
                self._convert(model.float32_twin(), example, fp32, spec)
                _fp16_weights(fp32, out)
            finally:
                fp32.unlink(missing_ok=True)
            return
        self._convert(model, example, out, spec)

    @staticmethod
    def _convert(model: torch.nn.Module, example: tuple, out: Path, spec) -> None:
        import torch
        import litert_torch

        from harness.models.dims import only_batch_dynamic

        dynamic = only_batch_dynamic(spec.inputs, model)
        program = torch.export.export(model, tuple(example), dynamic_shapes=dynamic,
                                      strict=False).run_decompositions()
        graph_module = program.module()
        batch_agnostic_views(graph_module)
        # Exported graphs refuse .eval(); the graph is already the eval one (batch norm
        # decomposed with running statistics), this only tells litert-torch so.
        for sub in graph_module.modules():
            sub.training = False
        with _quiet_converter():
            # the exported module takes the inputs as named positionals (args_0, ...), not
            # packed like a forward(*inputs) wrapper: its own dynamic_shapes structure
            converted = litert_torch.convert(graph_module, tuple(example),
                                             dynamic_shapes=only_batch_dynamic(spec.inputs,
                                                                               graph_module))
            converted.export(str(out))

    def quantize(self, step, src: Path, out: Path, calib: dict, spec) -> dict:
        from harness.formats.onnx_format import calibration_batches

        scheme = step.scheme
        if step.mode == "dynamic":
            return _quantize_dynamic(src, out, scheme.per_channel)
        batches = calibration_batches(calib, spec.inputs, step.calibration.samples,
                                      batch=CALIB_BATCH)
        details = _quantize_static(src, out, batches, spec.inputs, symmetric=scheme.symmetric,
                                   per_channel=scheme.per_channel)
        if scheme.activation_dtype == "uint8":
            # uint8 with zero point z is the int8 grid with zero point z - 128: the same
            # quantized values. LiteRT's int8 kernels compute on int8 only.
            details["requested_activation_dtype"] = "uint8"
            details["activation_note"] = ("uint8 activations realised as int8 (same grid, "
                                          "zero point shifted by 128): LiteRT's full-int8 "
                                          "kernels take int8 activations")
        return details

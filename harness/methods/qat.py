"""Quantization-aware training (QAT) with torchao's PT2E flow.

1. `torch.export` the model (dynamic batch) and `prepare_qat_pt2e` it with torchao's
   X86InductorQuantizer carrying a config built from the step's scheme: fake-quantize on the
   weights of every conv / linear (int8, symmetric, per channel or per tensor) and on the
   activations between them (uint8 or int8, affine or symmetric, per tensor). Conv + batch
   norm train as a simulated fused conv, folded at conversion.
2. Initialise the observers on `calibration.samples` calibration images (eval mode, fake
   quantization off), then fine-tune with fake quantization on the train split's training
   part (harness.methods.training.train; the moving-average observers keep tracking).
3. `convert_pt2e`: a graph of quantize / dequantize ops (quantized_decomposed) around float
   conv / linear, with int8 weights. `torch.onnx.export(dynamo=True)` turns these into
   QuantizeLinear / DequantizeLinear, which ONNX Runtime fuses into QLinearConv (int8
   kernels) and OpenVINO reads as FakeQuantize (u8 convolutions). The converted graph carries
   the trait qdq (harness.models.traits) with its scheme: what the formats read.

Only min/max ranges are realised (the observers are moving-average min/max): entropy and
percentile calibration are refused at plan time (`check`, in the method registry)."""

from __future__ import annotations

import copy
import types

import numpy as np
import torch

from harness.methods.context import BuildContext, MethodError, MethodOutput

CALIB_BATCH = 16
EPS = 2 ** -12


def check(step) -> str | None:
    """What QAT cannot realise whatever the format (the registry's plan-time check)."""
    if step.calibration.method != "minmax":
        return (f"qat: calibration method '{step.calibration.method}' is not realised: the "
                f"QAT observers are moving-average min/max; use method minmax")
    return None


def allow_train_eval(graph: torch.nn.Module) -> None:
    """Let .train()/.eval() switch an exported graph (batch norm, dropout) and return it, as
    nn.Module's do: training.train/top1 and the build call them. torchao's
    allow_exported_model_train_eval returns None from them."""
    from torchao.quantization.pt2e import (move_exported_model_to_eval,
                                           move_exported_model_to_train)

    def train(self, mode: bool = True):
        (move_exported_model_to_train if mode else move_exported_model_to_eval)(self)
        return self

    def eval(self):
        move_exported_model_to_eval(self)
        return self

    graph.train = types.MethodType(train, graph)
    graph.eval = types.MethodType(eval, graph)


def quantization_config(scheme):
    from torchao.quantization.pt2e import (FusedMovingAvgObsFakeQuantize,
                                           MovingAverageMinMaxObserver,
                                           MovingAveragePerChannelMinMaxObserver)
    from torchao.quantization.pt2e.quantizer import QuantizationConfig, QuantizationSpec

    if scheme.activation_dtype == "uint8":
        act_dtype, act_min, act_max = torch.uint8, 0, 255
    else:
        act_dtype, act_min, act_max = torch.int8, -128, 127
    activation = QuantizationSpec(
        dtype=act_dtype, quant_min=act_min, quant_max=act_max,
        qscheme=torch.per_tensor_symmetric if scheme.symmetric else torch.per_tensor_affine,
        is_dynamic=False,
        observer_or_fake_quant_ctr=FusedMovingAvgObsFakeQuantize.with_args(
            observer=MovingAverageMinMaxObserver, eps=EPS))
    # Weights are symmetric int8 whatever scheme.symmetric says (zero point 0): what the
    # int8 conv / matmul kernels of ONNX Runtime and OpenVINO take.
    weight_observer = (MovingAveragePerChannelMinMaxObserver if scheme.per_channel
                       else MovingAverageMinMaxObserver)
    from harness.models.int8 import weight_range
    low, high = weight_range(scheme.reduce_range)  # 7 bits where int8 kernels saturate
    weight = QuantizationSpec(
        dtype=torch.int8, quant_min=low, quant_max=high,
        qscheme=torch.per_channel_symmetric if scheme.per_channel else torch.per_tensor_symmetric,
        ch_axis=0, is_dynamic=False,
        observer_or_fake_quant_ctr=FusedMovingAvgObsFakeQuantize.with_args(
            observer=weight_observer, eps=EPS))
    return QuantizationConfig(activation, activation, weight, None, True)


def _scheme_report(scheme) -> dict:
    return {"weights": {"dtype": "int8", "symmetric": True,
                        "per_channel": scheme.per_channel,
                        "reduce_range": scheme.reduce_range is True},
            "activations": {"dtype": scheme.activation_dtype, "symmetric": scheme.symmetric,
                            "per_channel": False},
            "bias": "float (the runtime quantizes it to int32)"}


@torch.no_grad()
def _calibrate(prepared, calib_x: np.ndarray) -> None:
    from torchao.quantization.pt2e import (disable_fake_quant, enable_fake_quant,
                                           enable_observer, move_exported_model_to_eval)

    move_exported_model_to_eval(prepared)
    prepared.apply(disable_fake_quant)
    prepared.apply(enable_observer)
    for i in range(0, len(calib_x), CALIB_BATCH):
        prepared(torch.from_numpy(np.ascontiguousarray(calib_x[i:i + CALIB_BATCH])))
    prepared.apply(enable_fake_quant)


def apply_qat(module: torch.nn.Module, step, ctx: BuildContext) -> MethodOutput:
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import X86InductorQuantizer

    from harness.methods.training import top1, torch_threads, train, train_split
    from harness.models.dims import batch_dim
    from harness.models.traits import with_traits

    reason = check(step)
    if reason:
        raise MethodError(reason)
    (train_x, train_y), (val_x, val_y) = train_split(ctx.dataset, validation=True)
    calib_x = ctx.dataset.calib_x[:step.calibration.samples]
    threads = ctx.threads
    before = top1(module, val_x, val_y, threads=threads)

    example = torch.from_numpy(np.ascontiguousarray(calib_x[:2]))
    with torch_threads(threads):
        graph = torch.export.export(copy.deepcopy(module).train(), (example,),
                                    dynamic_shapes=(batch_dim(),)).module()
        quantizer = X86InductorQuantizer().set_global(quantization_config(step.scheme))
        prepared = prepare_qat_pt2e(graph, quantizer)
    allow_train_eval(prepared)
    _calibrate(prepared, calib_x)
    after_calibration = top1(prepared, val_x, val_y, threads=threads)
    history = train(prepared, (train_x, train_y), step.train, threads=threads, label="qat")
    fake_quant = top1(prepared, val_x, val_y, threads=threads)
    with torch_threads(threads):
        converted = convert_pt2e(prepared)
    allow_train_eval(converted)
    converted.eval()
    converted_top1 = top1(converted, val_x, val_y, threads=threads)
    quant_ops = sum(1 for n in converted.graph.nodes if n.op == "call_function"
                    and "quantize_per" in str(n.target))
    if quant_ops == 0:
        raise MethodError("qat: the converted model has no quantize/dequantize ops "
                          "(the quantizer annotated nothing in this model)")
    scheme = _scheme_report(step.scheme)
    with_traits(converted, qdq=scheme)
    return MethodOutput(converted, {
        "quantizer": "torchao PT2E QAT (prepare_qat_pt2e / convert_pt2e, "
                     "X86InductorQuantizer annotations)",
        "scheme": scheme,
        "observers": "moving-average min/max (fused fake-quantize), initialised on the "
                     "calibration samples",
        "calibration_samples": int(len(calib_x)),
        "train": history,
        "validation_samples": int(len(val_y)),
        "val_top1_fp32": before,
        "val_top1_after_calibration": after_calibration,  # fake-quant, before training
        "val_top1_qat_fake_quant": fake_quant,
        "val_top1_converted": converted_top1,  # torch's reference int8 simulation
        "quantize_dequantize_ops": quant_ops})

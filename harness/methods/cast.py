"""Mixed precision (cast): the model's weights and compute in fp16 or bf16, its inputs and
outputs in float32, so every format keeps the harness's fp32 I/O contract.

The result is a `MixedPrecision` wrapper: a deep copy of the model cast to the dtype, with
the input cast to the dtype and the output cast back to float32. Formats that realise the
dtype in the graph (torch, ONNX fp16) export the wrapper as it is; formats whose runtime
chooses the compute precision (OpenVINO's INFERENCE_PRECISION_HINT, LiteRT's fp16 weights)
export `float32_twin()`, the same weights (each exactly representable in float32) in an
fp32 graph, and set the precision their own way. The wrapper carries the trait dtype
(harness.models.traits); formats that cannot run a dtype say so at plan time."""

from __future__ import annotations

import copy

import torch

from harness.methods.context import BuildContext, MethodOutput
from harness.models.traits import with_traits

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
REPORT_SAMPLES = 64


class MixedPrecision(torch.nn.Module):
    """`inner` computes in `dtype_name`; callers pass and get float32."""

    def __init__(self, inner: torch.nn.Module, dtype_name: str):
        super().__init__()
        self.inner = inner
        self.dtype_name = dtype_name
        self.dtype = DTYPES[dtype_name]

    def forward(self, *inputs):
        """Float inputs in the dtype (integer inputs such as token ids as they are), float
        outputs back in float32."""
        from torch.utils._pytree import tree_map

        args = [x.to(self.dtype) if x.is_floating_point() else x for x in inputs]
        return tree_map(lambda t: t.to(torch.float32)
                        if isinstance(t, torch.Tensor) and t.is_floating_point() else t,
                        self.inner(*args))

    def float32_twin(self) -> torch.nn.Module:
        """The inner model in float32: the same (dtype-rounded) weights, which float32 holds
        exactly, for toolchains that store or compute the dtype themselves."""
        return copy.deepcopy(self.inner).to(torch.float32).eval()


def _first(output) -> torch.Tensor:
    """The first tensor a forward returns (a tensor, a tuple or a dict of them)."""
    from torch.utils._pytree import tree_leaves
    return next(t for t in tree_leaves(output) if isinstance(t, torch.Tensor)).float()


def _tensor_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size()
               for t in [*module.parameters(), *module.buffers()])


@torch.no_grad()
def apply_cast(module: torch.nn.Module, step, ctx: BuildContext) -> MethodOutput:
    dtype = DTYPES[step.dtype]
    source = module.eval()
    inner = copy.deepcopy(source).to(dtype).eval()
    cast = with_traits(MixedPrecision(inner, step.dtype).eval(), dtype=step.dtype)
    floating = sum(t.is_floating_point() for t in [*source.parameters(), *source.buffers()])
    from harness.models.dims import example_tensors

    dataset = ctx.dataset
    x = example_tensors(dataset.inputs, dataset.calib, batch=REPORT_SAMPLES)
    with torch.inference_mode():
        reference = _first(source(*x))
        out = _first(cast(*x))
    err = (out - reference).abs()
    return MethodOutput(cast, {
        "dtype": step.dtype, "io": "float32 (input cast to the dtype, output back to float32)",
        "cast_tensors": int(floating),
        "tensor_bytes_fp32": _tensor_bytes(source), "tensor_bytes": _tensor_bytes(inner),
        # torch eager on the build host, against the fp32 model, on calibration inputs
        "torch_eager_max_abs_err": round(float(err.max()), 6),
        "torch_eager_top1_agreement": float((out.argmax(1) == reference.argmax(1))
                                            .float().mean()) if out.dim() == 2 else None,
        "samples": REPORT_SAMPLES,
        "compute_precision": "decided per format: see the runtime's precision in each "
                             "measurement (ONNX Runtime, OpenVINO and LiteRT report what "
                             "they actually compute in)"})

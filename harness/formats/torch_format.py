"""torch: a torch.export program saved as .pt2 (loads without pickle or model code).

quantize static: torchao's PT2E flow on the exported fp32 program. `torch.export.load(src)`
gives the graph; `prepare_pt2e` with X86InductorQuantizer (a config built from the step's
scheme: int8 symmetric per-channel weights, uint8 per-tensor activations, affine or
symmetric; min/max observers), calibration on `calibration.samples` calibration images,
`convert_pt2e` (int8 weights folded in), and the converted graph re-exported with a dynamic
batch and saved as .pt2. The torch runtime compiles such programs with inductor and
freezing, which lowers dequantize -> conv / linear to oneDNN int8 kernels; eager would
compute them in fp32 (see agents.runtimes.torch_rt).

The fp32 export is non-strict, so its graph carries `nn_module_stack` / `torch_fn` metadata
but not the `source_fn_stack` that X86InductorQuantizer's partition matching was written
for; its fallback groups every call of a shared module (resnet's one `relu` per block)
into one partition and then refuses it ("more than one output node"). Before annotation the
graph gets `source_fn_stack` back: one entry per call of a torch.nn leaf module (the run of
nodes it produced) and one per tensor add, what a strict export records.

quantize dynamic is skipped (DYNAMIC_SKIP): torchao's dynamic int8 covers Linear layers
only. cast fp16 / bf16: the mixed-precision model exports as it is and runs in torch eager
in that dtype (on this CPU slower than fp32: the figures show it). qat is skipped
(QAT_SKIP). What cannot be realised is a skip with the reason, never a silent substitute."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from harness.formats.base import Format

if TYPE_CHECKING:  # annotations only: torch is imported where it is used
    import torch

CALIB_BATCH = 16
EPS = 2 ** -12  # the observers' minimum scale, as torchao's x86 default config

QAT_SKIP = ("format 'torch': qat is not realised in this version: exporting the converted "
            "QAT graph to .pt2 and inductor's int8 lowering of it are not wired or verified; "
            "torch int8 comes from the quantize step (mode static)")
DYNAMIC_SKIP = (
    "torch: dynamic int8 is not realised in this version: torchao's dynamic activation "
    "quantization (Int8DynamicActivationInt8WeightConfig, X86InductorQuantizer is_dynamic) "
    "covers Linear layers only (every convolution would stay fp32), and the .pt2 path for "
    "its quantized linears is not wired. Use mode static")
CALIBRATION_SKIP = (
    "torch: calibration method '{method}' is not realised: torchao's PT2E observers are "
    "min/max (MinMaxObserver, per channel for weights) and HistogramObserver, whose range "
    "search minimises the L2 quantization error: neither KL divergence (entropy) nor a "
    "percentile. Use method minmax")
PER_TENSOR_SKIP = (
    "torch: per-tensor weights are not realised: inductor's x86 int8 lowering (torchao's "
    "freezing passes) matches per-channel weight dequantization only, so per-tensor "
    "weights would leave every convolution in fp32. Use per_channel: true")
SIGNED_ACTIVATIONS_SKIP = (
    "torch: activation_dtype int8 is not realised: X86InductorQuantizer's recipe and "
    "inductor's oneDNN int8 lowering are built for uint8 activations (signed ones are not "
    "verified to reach int8 kernels here). Use activation_dtype uint8")

def _leaf_modules() -> tuple:
    """torch.nn leaf modules whose calls X86InductorQuantizer finds by source partition
    (conv, linear and their fused batch norm / activation / pooling neighbours)."""
    import torch
    nn = torch.nn
    return (nn.Conv1d, nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6,
            nn.Hardtanh, nn.Hardswish, nn.SiLU, nn.GELU, nn.LeakyReLU, nn.MaxPool2d,
            nn.AvgPool2d, nn.AdaptiveAvgPool2d)


def restore_source_partitions(graph_module: torch.fx.GraphModule) -> int:
    """Give nodes of a non-strict export the `source_fn_stack` a strict export records: one
    partition per call of a torch.nn leaf module (a run of consecutive nodes under the same
    module), one per tensor add. Nodes that have it already are left alone. Returns how
    many nodes got it."""
    import operator

    import torch

    leaves = {f"{t.__module__}.{t.__qualname__}": t for t in _leaf_modules()}
    adds = {torch.ops.aten.add.Tensor, torch.ops.aten.add_.Tensor}
    restored, calls, previous = 0, 0, None
    for node in graph_module.graph.nodes:
        if node.op != "call_function":
            continue  # get_attr / placeholder nodes do not end a module's call
        if node.meta.get("source_fn_stack"):
            previous = None
            continue
        stack = node.meta.get("nn_module_stack") or {}
        leaf = None
        if stack:
            key, (fqn, cls) = list(stack.items())[-1]
            name = cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}"
            leaf = leaves.get(name)
        if leaf is not None:
            if key != previous:
                calls += 1
            node.meta["source_fn_stack"] = [(f"{fqn}.call{calls}", leaf)]
            previous = key
            restored += 1
            continue
        previous = None
        if node.target in adds:
            node.meta["source_fn_stack"] = [(node.name, operator.add)]
            restored += 1
    return restored


def _ptq_config(scheme):
    """X86InductorQuantizer config for post-training static int8 with min/max ranges."""
    import torch
    from torchao.quantization.pt2e import MinMaxObserver, PerChannelMinMaxObserver
    from torchao.quantization.pt2e.quantizer import QuantizationConfig, QuantizationSpec

    activation = QuantizationSpec(
        dtype=torch.uint8, quant_min=0, quant_max=255,
        qscheme=torch.per_tensor_symmetric if scheme.symmetric else torch.per_tensor_affine,
        is_dynamic=False, observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=EPS))
    # Weights are symmetric int8 per output channel whatever scheme.symmetric says (zero
    # point 0): what oneDNN's int8 conv / matmul take and what inductor's lowering matches.
    from harness.models.int8 import weight_range
    low, high = weight_range(scheme.reduce_range)
    weight = QuantizationSpec(
        dtype=torch.int8, quant_min=low, quant_max=high, qscheme=torch.per_channel_symmetric,
        ch_axis=0, is_dynamic=False,
        observer_or_fake_quant_ctr=PerChannelMinMaxObserver.with_args(eps=EPS))
    return QuantizationConfig(activation, activation, weight, None, False)


def _weighted_ops(graph_module: torch.fx.GraphModule) -> dict:
    """conv / linear nodes, and how many take a per-channel int8 weight."""
    import torch
    conv = {torch.ops.aten.conv1d.default, torch.ops.aten.conv2d.default}
    linear = {torch.ops.aten.linear.default}
    dequant = torch.ops.quantized_decomposed.dequantize_per_channel.default
    counts = {"convs": [0, 0], "linears": [0, 0]}
    for node in graph_module.graph.nodes:
        kind = "convs" if node.target in conv else "linears" if node.target in linear else None
        if kind is None:
            continue
        counts[kind][1] += 1
        weight = node.args[1] if len(node.args) > 1 else None
        if isinstance(weight, torch.fx.Node) and weight.target == dequant:
            counts[kind][0] += 1
    return {f"int8_{kind}": f"{q}/{n}" for kind, (q, n) in counts.items()}


def _drop_unused_tensors(graph_module: torch.fx.GraphModule) -> int:
    """convert_pt2e folds the int8 weights into new constants but leaves the fp32 ones as
    parameters; re-exported, they would double the artifact. Returns how many it dropped."""
    graph_module.graph.eliminate_dead_code()
    graph_module.recompile()
    used = {n.target for n in graph_module.graph.nodes if n.op == "get_attr"}
    dropped = 0
    for name, _ in [*graph_module.named_parameters(), *graph_module.named_buffers()]:
        if name not in used:
            owner, _, attr = name.rpartition(".")
            delattr(graph_module.get_submodule(owner) if owner else graph_module, attr)
            dropped += 1
    return dropped


class TorchFormat(Format):
    name = "torch"
    runtime = "torch"
    devices = ("intel-cpu", "arm-edge", "nvidia-gpu")  # nvidia-gpu: torch CUDA agent
    extension = ".pt2"
    options = {"export": "torch.export", "dynamic_axes": "named"}
    int8_saturation = True  # oneDNN's u8 x s8 kernels without VNNI; 7-bit weights avoid it

    def supports(self, step) -> str | None:
        if step.kind != "quantize":
            return super().supports(step)
        if step.mode == "dynamic":
            return DYNAMIC_SKIP
        if step.calibration.method != "minmax":
            return CALIBRATION_SKIP.format(method=step.calibration.method)
        if not step.scheme.per_channel:
            return PER_TENSOR_SKIP
        if step.scheme.activation_dtype != "uint8":
            return SIGNED_ACTIVATIONS_SKIP
        return None

    def runs_on(self, device: str, precision: str) -> str | None:
        if device == "nvidia-gpu" and precision == "int8":
            return ("format 'torch': int8 programs (PT2E) lower to x86 oneDNN kernels; the "
                    "CUDA torch runtime has no int8 path (use tensorrt for int8 on nvidia-gpu)")
        return None

    def supports_traits(self, traits: dict) -> str | None:
        return QAT_SKIP if traits.get("qdq") else None

    def toolchain(self) -> dict:
        import torch
        return {"torch": torch.__version__, "torchao": metadata.version("torchao")}

    def export(self, model: torch.nn.Module, example: tuple, out: Path, spec) -> None:
        import torch

        from harness.models.dims import dynamic_shapes

        program = torch.export.export(model, tuple(example),
                                      dynamic_shapes=dynamic_shapes(spec.inputs, model),
                                      strict=False)
        torch.export.save(program, str(out))

    def quantize(self, step, src: Path, out: Path, calib: dict, spec) -> dict:
        import torch
        reason = self.supports(step)
        if reason:
            raise ValueError(reason)
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
            X86InductorQuantizer,
        )

        from harness.formats.onnx_format import calibration_batches, count_samples
        from harness.models.dims import dynamic_shapes, example_tensors

        batches = calibration_batches(calib, spec.inputs, step.calibration.samples,
                                      batch=CALIB_BATCH)
        samples = count_samples(batches, spec.inputs)
        graph = torch.export.load(str(src)).module()
        # Outputs nobody reads (a transformer's pooler under an embedding task) leave
        # partitions without output nodes, on which X86InductorQuantizer's linear + unary
        # annotation fails (IndexError); they compute nothing the artifact returns.
        graph.graph.eliminate_dead_code()
        graph.recompile()
        restored = restore_source_partitions(graph)
        quantizer = X86InductorQuantizer().set_global(_ptq_config(step.scheme))
        prepared = prepare_pt2e(graph, quantizer)
        with torch.no_grad():
            for batch in batches:
                prepared(*[torch.from_numpy(batch[s.name]) for s in spec.inputs])
        converted = convert_pt2e(prepared)
        dropped = _drop_unused_tensors(converted)
        ops = _weighted_ops(converted)
        quantize_ops = sum(1 for n in converted.graph.nodes if n.op == "call_function"
                           and "quantized_decomposed.quantize_per" in str(n.target))
        if quantize_ops == 0 or all(v.startswith("0/") for v in ops.values()):
            raise RuntimeError("torch: X86InductorQuantizer quantized no conv / linear of this "
                               f"model ({ops}): the artifact would be fp32 under an int8 name")
        # Batch 2, as the fp32 export: a batch-1 example would let export specialise it.
        program = torch.export.export(converted, example_tensors(spec.inputs, calib),
                                      dynamic_shapes=dynamic_shapes(spec.inputs, converted),
                                      strict=False)
        torch.export.save(program, str(out))
        symmetric = step.scheme.symmetric
        return {
            "quantizer": "torchao X86InductorQuantizer (PT2E prepare_pt2e / convert_pt2e)",
            "weights": {"dtype": "int8", "symmetric": True, "per_channel": True,
                        "reduce_range": step.scheme.reduce_range is True},
            "activations": {"dtype": "uint8", "symmetric": symmetric, "per_channel": False},
            "bias": "float (oneDNN applies it in the int8 kernel)",
            "calibration_method": "minmax",
            "observers": "MinMaxObserver (activations), PerChannelMinMaxObserver (weights)",
            "calibration_samples": int(samples),
            "quantize_ops": int(quantize_ops), **ops,
            "source_partitions_restored": int(restored),
            "unused_float_tensors_dropped": int(dropped),
            "runs_as": ("int8 when compiled by inductor with freezing (the torch runtime "
                        "compiles int8 programs); eager would compute in fp32")}

"""TensorRT: a serialized engine built from the ONNX export on the GPU that will run it.

Precisions as TensorRT realises them: fp32 (no precision flag); cast fp16 / bf16 through
the builder's FP16 / BF16 flags on the fp32 graph (TensorRT picks per layer, and the
runtime reads back what each layer runs in); int8 from explicit Q/DQ nodes (ONNX Runtime's
static quantizer, or a QAT model with symmetric int8 activations). The engine is built
with detailed profiling verbosity so its inspector can report per-layer precisions.

Written against TensorRT 10's Python API. On hosts where `import tensorrt` fails (this
project's CI and the registry's placeholder wheels, see ../shared/STACK.md) every TensorRT
cell is skipped with that reason; nothing is faked."""

from __future__ import annotations

from typing import TYPE_CHECKING

import importlib.util
import shutil
from pathlib import Path


from harness.formats.base import Format
from harness.formats.onnx_format import OnnxFormat

if TYPE_CHECKING:  # annotations only: torch is imported where it is used
    import torch

WORKSPACE_BYTES = 2 << 30


def tensorrt_missing() -> str | None:
    if importlib.util.find_spec("tensorrt") is None:
        return ("the tensorrt Python package is not installed here (PyPI's tensorrt wheels "
                "are placeholders that download from NVIDIA's index)")
    return None


class TensorRtFormat(Format):
    name = "tensorrt"
    runtime = "tensorrt"
    devices = ("nvidia-gpu",)
    builds_on = "nvidia-gpu"  # an engine is specific to the GPU model and TensorRT version
    extension = ".engine"
    options = {"from": "onnx", "opset": 18, "profile": "min/opt/max of the measured shapes",
               "int8": "explicit QDQ"}
    uses_profile = True  # an engine is built for the shapes the matrix measures
    from_onnx = True

    def unavailable(self) -> str | None:
        return tensorrt_missing()

    def supports(self, step) -> str | None:
        if step.kind == "quantize" and step.mode == "dynamic":
            return "TensorRT has no dynamic quantization (activations need fixed scales)"
        if step.kind == "quantize" and step.mode == "static":
            if not step.scheme.symmetric or step.scheme.activation_dtype != "int8":
                return ("TensorRT int8 needs symmetric int8 activations "
                        "(scheme: {symmetric: true, activation_dtype: int8})")
            return None
        return super().supports(step)

    def supports_traits(self, traits: dict) -> str | None:
        qdq = traits.get("qdq")
        if qdq and (not qdq["activations"]["symmetric"]
                    or qdq["activations"]["dtype"] != "int8"):
            return ("format 'tensorrt': a Q/DQ model needs symmetric int8 activations for "
                    "TensorRT's explicit quantization (scheme: {symmetric: true, "
                    "activation_dtype: int8})")
        return None

    def toolchain(self) -> dict:
        import torch
        import tensorrt as trt
        return OnnxFormat().toolchain() | {"tensorrt": trt.__version__,
                                          "gpu": torch.cuda.get_device_name(0)}

    def convert_file(self, src: Path, out: Path, spec) -> None:
        """An ONNX file straight to TensorRT's parser (as one checked file first)."""
        onnx_path = out.with_suffix(".onnx")  # kept beside the engine for quantize()
        OnnxFormat().convert_file(src, onnx_path, spec)
        build_engine(onnx_path, out, spec, set())

    def export(self, model: torch.nn.Module, example: tuple, out: Path, spec) -> None:
        from harness.models.traits import traits_of

        onnx_path = out.with_suffix(".onnx")  # kept beside the engine for quantize()
        traits = traits_of(model)
        dtype = traits.dtype
        # A cast model is built from its fp32 graph with the dtype's builder flag: TensorRT
        # chooses each layer's precision itself (an fp16 ONNX graph would pin it instead).
        OnnxFormat().export(model.float32_twin() if dtype else model, example, onnx_path, spec)
        flags = {dtype} if dtype else ({"int8"} if traits.qdq is not None else set())
        build_engine(onnx_path, out, spec, flags)

    def quantize(self, step, src: Path, out: Path, calib: dict, spec) -> dict:
        qdq = out.with_suffix(".qdq.onnx")
        details = OnnxFormat().quantize(step, src.with_suffix(".onnx"), qdq, calib, spec)
        build_engine(qdq, out, spec, {"int8"})
        return details | {"engine": "explicit QDQ from ONNX Runtime's quantizer, INT8 flag"}


BUILDER_FLAGS = {"fp16": "FP16", "bf16": "BF16", "int8": "INT8"}


def profile_shapes(input_spec, profile: dict) -> tuple[tuple, tuple, tuple]:
    """(min, opt, max) shapes of one input: each named dim over its axis's range in the
    profile (what the matrix measures), fixed dims as they are."""
    shapes = []
    for k in range(3):
        shapes.append(tuple(profile[d][k] if isinstance(d, str) else d
                            for d in input_spec.dims))
    return tuple(shapes)


def build_engine(onnx_path: Path, out: Path, spec, flags: set[str]) -> None:
    """Parse the ONNX file and build a serialized engine with an optimization profile per
    input spanning what the matrix measures (min / opt / max of each named axis) and the
    precision flags given (fp16, bf16, int8; none: fp32)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    # per-layer precisions in the engine inspector (agents/runtimes/tensorrt_layers.py)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    for flag in sorted(flags):
        # int8: the scales come from the Q/DQ nodes (explicit quantization)
        config.set_flag(getattr(trt.BuilderFlag, BUILDER_FLAGS[flag]))
    profile = builder.create_optimization_profile()
    for input_spec in spec.inputs:
        if any(isinstance(d, str) for d in input_spec.dims):
            profile.set_shape(input_spec.name, *profile_shapes(input_spec, spec.profile))
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise RuntimeError("TensorRT failed to build an engine (see its log above)")
    tmp = out.with_suffix(".partial")
    tmp.write_bytes(bytes(engine))
    shutil.move(tmp, out)

"""TensorRT: a serialized engine built from the ONNX export on the GPU that will run it.

Written against TensorRT 10's Python API. On hosts where `import tensorrt` fails (this
project's CI and the registry's placeholder wheels, see ../shared/STACK.md) every TensorRT
cell is skipped with that reason; nothing is faked."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import torch

from harness.formats.base import Format
from harness.formats.onnx_format import INPUT_NAME, OnnxFormat

MAX_BATCH = 64
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
    options = {"from": "onnx", "opset": 18, "max_batch": MAX_BATCH, "int8": "explicit QDQ"}

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

    def supports_model_step(self, step) -> str | None:
        # Not wired and not verifiable without TensorRT: the engine builder sets no
        # FP16/BF16 flag and its int8 path is for ORT's symmetric-int8 QDQ.
        if step.kind == "cast":
            return (f"format 'tensorrt': cast {step.dtype} is not realised in this version "
                    f"(the engine builder sets no FP16/BF16 flag)")
        if step.kind == "qat":
            return "format 'tensorrt': qat is not realised in this version"
        return None

    def toolchain(self) -> dict:
        import tensorrt as trt
        return OnnxFormat().toolchain() | {"tensorrt": trt.__version__,
                                          "gpu": torch.cuda.get_device_name(0)}

    def export(self, model: torch.nn.Module, example: torch.Tensor, out: Path) -> None:
        onnx_path = out.with_suffix(".onnx")  # kept beside the engine for quantize()
        OnnxFormat().export(model, example, onnx_path)
        _build_engine(onnx_path, out, tuple(example.shape[1:]), int8=False)

    def quantize(self, step, src: Path, out: Path, calib_x: np.ndarray) -> dict:
        qdq = out.with_suffix(".qdq.onnx")
        details = OnnxFormat().quantize(step, src.with_suffix(".onnx"), qdq, calib_x)
        shape = tuple(calib_x.shape[1:])
        _build_engine(qdq, out, shape, int8=True)
        return details | {"engine": "explicit QDQ from ONNX Runtime's quantizer, INT8 flag"}


def _build_engine(onnx_path: Path, out: Path, sample_shape: tuple, int8: bool) -> None:
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
    if int8:
        config.set_flag(trt.BuilderFlag.INT8)  # scales come from the QDQ nodes
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAME, (1, *sample_shape), (1, *sample_shape),
                      (MAX_BATCH, *sample_shape))
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise RuntimeError("TensorRT failed to build an engine (see its log above)")
    tmp = out.with_suffix(".partial")
    tmp.write_bytes(bytes(engine))
    shutil.move(tmp, out)

"""TensorRT engine on an NVIDIA GPU: CUDA buffers through torch, execute_async_v3 on a
stream, and a device synchronisation before the result is read, so the host clock sees
the whole inference (host-to-device copy, kernels, device-to-host copy).

The precision reported is what the engine runs, read back layer by layer with TensorRT's
engine inspector (the engine is built with detailed profiling verbosity, see
harness/formats/tensorrt_format.py), as the other runtimes report what they compute in;
the precision the build asked for is kept beside it."""

from __future__ import annotations

import numpy as np
import tensorrt as trt
import torch

from agents.arrays import contiguous
from agents.runtimes.base import Session, check_inputs
from agents.runtimes.tensorrt_layers import engine_precision, layer_precisions

LATENCY_INCLUDES = "host end-to-end: host-to-device copy, engine, device-to-host copy, synchronised"
class TensorRtSession(Session):
    latency_includes = LATENCY_INCLUDES

    def __init__(self, path: str, precision: str):
        self._logger = trt.Logger(trt.Logger.WARNING)
        with open(path, "rb") as f:
            self._engine = trt.Runtime(self._logger).deserialize_cuda_engine(f.read())
        if self._engine is None:
            raise RuntimeError(f"TensorRT could not deserialize {path} (built for another GPU "
                               "or TensorRT version?)")
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        mode = self._engine.get_tensor_mode
        self._inputs = [n for n in names if mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if mode(n) == trt.TensorIOMode.OUTPUT]
        self._stream = torch.cuda.Stream()
        self._buffers: dict[tuple, tuple[dict, dict]] = {}
        inspector = self._engine.create_engine_inspector()
        inspector.execution_context = self._context  # full format strings, not abbreviations
        self._engine_json = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
        counts = layer_precisions(self._engine_json)
        self.precision = engine_precision(counts, precision)
        self.info = {"runtime": "tensorrt", "version": trt.__version__,
                     "gpu": torch.cuda.get_device_name(0), "requested_precision": precision,
                     "compute_layer_precisions": dict(sorted(counts.items())),
                     "precision_source": ("engine inspector, per layer" if counts else
                                          "requested (the engine has no layer information)")}

    def _io(self, inputs: dict[str, np.ndarray]) -> tuple[dict, dict]:
        """Device buffers for these input shapes (allocated once per shape) bound to the
        context."""
        check_inputs(inputs, self._inputs, "tensorrt")
        key = tuple(tuple(inputs[n].shape) for n in self._inputs)
        if key not in self._buffers:
            for name in self._inputs:
                self._context.set_input_shape(name, tuple(inputs[name].shape))
            ins = {n: torch.empty(tuple(inputs[n].shape), device="cuda",
                                  dtype=_torch_dtype(self._engine.get_tensor_dtype(n)))
                   for n in self._inputs}
            outs = {n: torch.empty(tuple(self._context.get_tensor_shape(n)), device="cuda",
                                   dtype=_torch_dtype(self._engine.get_tensor_dtype(n)))
                    for n in self._outputs}
            self._buffers[key] = (ins, outs)
        ins, outs = self._buffers[key]
        for name, tensor in (ins | outs).items():
            if name in ins:
                self._context.set_input_shape(name, tuple(tensor.shape))
            self._context.set_tensor_address(name, tensor.data_ptr())
        return ins, outs

    def profiler(self):
        from agents.runtimes.tensorrt_profile import TensorRtProfiler
        return TensorRtProfiler(self, self._context, self._engine_json)

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        ins, outs = self._io(inputs)
        with torch.cuda.stream(self._stream):
            for name, tensor in ins.items():
                tensor.copy_(torch.from_numpy(contiguous(inputs[name])))
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
            results = [outs[n].cpu() for n in self._outputs]
        self._stream.synchronize()
        return [r.numpy() for r in results]


def _torch_dtype(dtype) -> torch.dtype:
    return {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
            trt.int64: torch.int64, trt.int8: torch.int8, trt.bool: torch.bool,
            trt.bfloat16: torch.bfloat16}[dtype]


def open_session(path: str, *, threads: int, device: str, precision: str) -> TensorRtSession:
    if device != "nvidia-gpu":
        raise ValueError(f"TensorRT engines run on nvidia-gpu, not {device}")
    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA device visible to this process")
    return TensorRtSession(path, precision)

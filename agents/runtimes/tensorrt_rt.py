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

from agents.runtimes.tensorrt_layers import engine_precision, layer_precisions

LATENCY_INCLUDES = "host end-to-end: host-to-device copy, engine, device-to-host copy, synchronised"
class TensorRtSession:
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
        self._input = next(n for n in names if mode(n) == trt.TensorIOMode.INPUT)
        self._output = next(n for n in names if mode(n) == trt.TensorIOMode.OUTPUT)
        self._stream = torch.cuda.Stream()
        self._buffers: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        inspector = self._engine.create_engine_inspector()
        inspector.execution_context = self._context  # full format strings, not abbreviations
        counts = layer_precisions(inspector.get_engine_information(
            trt.LayerInformationFormat.JSON))
        self.precision = engine_precision(counts, precision)
        self.info = {"runtime": "tensorrt", "version": trt.__version__,
                     "gpu": torch.cuda.get_device_name(0), "requested_precision": precision,
                     "compute_layer_precisions": dict(sorted(counts.items())),
                     "precision_source": ("engine inspector, per layer" if counts else
                                          "requested (the engine has no layer information)")}

    latency_includes = LATENCY_INCLUDES

    def _io(self, shape: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        if shape not in self._buffers:  # allocate once per batch shape, not per call
            self._context.set_input_shape(self._input, shape)
            out_shape = tuple(self._context.get_tensor_shape(self._output))
            self._buffers[shape] = (torch.empty(shape, device="cuda"),
                                    torch.empty(out_shape, device="cuda"))
        x, y = self._buffers[shape]
        self._context.set_input_shape(self._input, shape)
        self._context.set_tensor_address(self._input, x.data_ptr())
        self._context.set_tensor_address(self._output, y.data_ptr())
        return x, y

    def run(self, batch: np.ndarray) -> np.ndarray:
        x, y = self._io(tuple(batch.shape))
        with torch.cuda.stream(self._stream):
            x.copy_(torch.from_numpy(batch), non_blocking=False)
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
            result = y.cpu()
        self._stream.synchronize()
        return result.numpy()


def open_session(path: str, *, threads: int, device: str, precision: str) -> TensorRtSession:
    if device != "nvidia-gpu":
        raise ValueError(f"TensorRT engines run on nvidia-gpu, not {device}")
    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA device visible to this process")
    return TensorRtSession(path, precision)

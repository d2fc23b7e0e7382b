"""LiteRT (TFLite) interpreter on the CPU, XNNPACK delegate on (its default).

Models built by the harness have a dynamic batch (`[-1, C, H, W]`): the session resizes the
input and re-allocates only when the batch size changes, so a timed loop at one batch size
never pays for it. int8/uint8 inputs are quantized with the input's scale and zero point and
int8/uint8 outputs dequantized, so callers always pass and get float32.

fp16-weight models (the cast fp16 variant) run with their weights dequantized to fp32:
XNNPACK's default is fp32 inference (fp16 arithmetic only when forced, on ARM), so the
session reports fp32 and says what the weights are."""

from __future__ import annotations

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("ai-edge-litert")
    except Exception:  # noqa: BLE001 - a vendored copy without metadata still runs
        import ai_edge_litert
        return getattr(ai_edge_litert, "__version__", "unknown")


class LiteRtSession:
    def __init__(self, path: str, threads: int, precision: str):
        self._interpreter = Interpreter(model_path=path, num_threads=threads)
        self._interpreter.allocate_tensors()
        inp = self._interpreter.get_input_details()
        out = self._interpreter.get_output_details()
        if len(inp) != 1 or len(out) != 1:
            raise ValueError(f"{path}: expected one input and one output, found "
                             f"{len(inp)} and {len(out)}")
        inp, out = inp[0], out[0]
        self._in_index, self._out_index = inp["index"], out["index"]
        self._in_shape = [int(d) for d in inp["shape"]]
        self._dynamic_batch = int(inp["shape_signature"][0]) == -1
        self._in_dtype = np.dtype(inp["dtype"])
        self._in_quant = self._quant(inp)
        self._out_quant = self._quant(out)
        self._batch = self._in_shape[0]
        # Bound methods once: run() is what the latency probe times.
        self._set = self._interpreter.set_tensor
        self._invoke = self._interpreter.invoke
        self._get = self._interpreter.get_tensor
        self.precision = precision
        self.info = {"runtime": "litert", "version": _version(), "threads": threads,
                     "xnnpack": True, "input_dtype": self._in_dtype.name,
                     "output_dtype": np.dtype(out["dtype"]).name,
                     "dynamic_batch": self._dynamic_batch}
        if precision in ("fp16", "bf16"):
            fp16 = sum(np.dtype(t["dtype"]) == np.float16
                       for t in self._interpreter.get_tensor_details())
            self.precision = "fp32"
            self.info |= {"requested_precision": precision, "compute_precision": "fp32",
                          "fp16_tensors": int(fp16),
                          "compute_note": "XNNPACK's default fp32 inference: fp16 weights "
                                          "are dequantized to fp32"}

    @staticmethod
    def _quant(detail: dict):
        """(scale, zero point, dtype, min, max) for an integer tensor, else None."""
        dtype = np.dtype(detail["dtype"])
        if dtype.kind not in "iu":
            return None
        scale, zero_point = detail["quantization"]
        if not scale:
            raise ValueError(f"tensor {detail['name']} is {dtype.name} without a scale")
        info = np.iinfo(dtype)
        return float(scale), int(zero_point), dtype, info.min, info.max

    def _resize(self, batch: int) -> None:
        self._interpreter.resize_tensor_input(self._in_index, [batch, *self._in_shape[1:]],
                                              strict=True)
        self._interpreter.allocate_tensors()
        self._batch = batch

    def run(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] != self._batch:
            if not self._dynamic_batch:
                raise ValueError(f"the model's batch is fixed at {self._batch}; "
                                 f"got a batch of {batch.shape[0]}")
            self._resize(batch.shape[0])
        if self._in_quant is None:
            self._set(self._in_index, batch)
        else:
            scale, zero_point, dtype, lo, hi = self._in_quant
            q = np.rint(batch / scale)
            q += zero_point
            self._set(self._in_index, np.clip(q, lo, hi, out=q).astype(dtype))
        self._invoke()
        out = self._get(self._out_index)
        if self._out_quant is not None:
            scale, zero_point = self._out_quant[:2]
            out = (out.astype(np.float32) - zero_point) * np.float32(scale)
        return out


def open_session(path: str, *, threads: int, device: str, precision: str) -> LiteRtSession:
    if device not in ("intel-cpu", "arm-edge"):
        raise ValueError(f"the LiteRT CPU runtime does not run on {device}")
    return LiteRtSession(path, threads, precision)

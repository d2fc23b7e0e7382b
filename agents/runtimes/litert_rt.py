"""LiteRT (TFLite) interpreter on the CPU, XNNPACK delegate on (its default).

Inputs are matched to the model's by position (the order the model declares them; the
converter names them args_0, args_1, ...). Dynamic dims (-1 in a signature, such as the
batch) are resized when an input's shape changes: a timed loop at one shape never pays
for it. int8/uint8 inputs are quantized with their scale and zero point and int8/uint8
outputs dequantized, so callers pass and get float32 (integer inputs such as token ids
pass as they are).

fp16-weight models (the cast fp16 variant) run with their weights dequantized to fp32:
XNNPACK's default is fp32 inference (fp16 arithmetic only when forced, on ARM), so the
session reports fp32 and says what the weights are."""

from __future__ import annotations

import re

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from agents.runtimes.base import Session

_ARG = re.compile(r"args_(\d+)")


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("ai-edge-litert")
    except Exception:  # noqa: BLE001 - a vendored copy without metadata still runs
        import ai_edge_litert
        return getattr(ai_edge_litert, "__version__", "unknown")


def _quant(detail: dict):
    """(scale, zero point, dtype, min, max) for a quantized float tensor, else None."""
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    if dtype.kind not in "iu" or not scale:
        return None  # float, or an integer tensor that is data (token ids)
    info = np.iinfo(dtype)
    return float(scale), int(zero_point), dtype, info.min, info.max


def _order(details: list[dict]) -> list[dict]:
    """The model's inputs in the order the model declares them."""
    def key(detail):
        found = _ARG.search(detail["name"])
        return (int(found.group(1)) if found else 10**6, detail["index"])
    return sorted(details, key=key)


class LiteRtSession(Session):
    latency_includes = ("host end-to-end: set the inputs, invoke, read the outputs "
                        "(quantize / dequantize where the model's I/O is int8)")

    def __init__(self, path: str, threads: int, precision: str):
        self._path = path
        self._interpreter = Interpreter(model_path=path, num_threads=threads)
        self._interpreter.allocate_tensors()
        self._inputs = _order(self._interpreter.get_input_details())
        self._outputs = self._interpreter.get_output_details()
        self._in_quant = [_quant(d) for d in self._inputs]
        self._out_quant = [_quant(d) for d in self._outputs]
        self._shapes = [tuple(int(x) for x in d["shape"]) for d in self._inputs]
        # Bound methods once: run() is what the latency probe times.
        self._set = self._interpreter.set_tensor
        self._invoke = self._interpreter.invoke
        self._get = self._interpreter.get_tensor
        self.precision = precision
        self.info = {"runtime": "litert", "version": _version(), "threads": threads,
                     "xnnpack": True,
                     "inputs": {d["name"]: [np.dtype(d["dtype"]).name,
                                            [int(x) for x in d["shape_signature"]]]
                                for d in self._inputs},
                     "output_dtypes": [np.dtype(d["dtype"]).name for d in self._outputs]}
        if precision in ("fp16", "bf16"):
            fp16 = sum(np.dtype(t["dtype"]) == np.float16
                       for t in self._interpreter.get_tensor_details())
            self.precision = "fp32"
            self.info |= {"requested_precision": precision, "compute_precision": "fp32",
                          "fp16_tensors": int(fp16),
                          "compute_note": "XNNPACK's default fp32 inference: fp16 weights "
                                          "are dequantized to fp32"}

    def concurrent(self, inputs, concurrency, threads):
        """One interpreter per request in flight (an Interpreter is not thread-safe; its
        invoke releases the GIL)."""
        from agents.probes.scenarios import Concurrency
        from agents.runtimes.base import split_budget

        n, per_call, source = split_budget(concurrency, threads)
        sessions = [LiteRtSession(self._path, per_call, self.precision) for _ in range(n)]
        calls = []
        for session in sessions:
            session.run(inputs)  # sizes its tensors for these inputs
            calls.append(lambda session=session: session.run(inputs))
        return Concurrency(calls, per_call, source, {"interpreters": n})

    def profiler(self):
        from agents.probes.profile import ProfileUnavailable
        raise ProfileUnavailable(
            f"ai-edge-litert {self.info['version']}: the Python Interpreter exposes no per-op "
            "timing (LiteRT's op profiler is in its C++ benchmark_model tool, "
            "--enable_op_profiling, which the wheel does not ship)")

    def _resize(self, arrays: list[np.ndarray]) -> None:
        for detail, array in zip(self._inputs, arrays):
            self._interpreter.resize_tensor_input(detail["index"], list(array.shape),
                                                  strict=True)
        self._interpreter.allocate_tensors()
        self._shapes = [a.shape for a in arrays]

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        arrays = list(inputs.values())
        if len(arrays) != len(self._inputs):
            raise ValueError(f"litert: the model has {len(self._inputs)} inputs, got "
                             f"{len(arrays)} ({sorted(inputs)})")
        if [a.shape for a in arrays] != self._shapes:
            self._resize(arrays)
        for detail, quant, array in zip(self._inputs, self._in_quant, arrays):
            if quant is None:
                want = detail["dtype"]
                if array.dtype != want and array.dtype.kind in "iu":
                    # the converter stores int64 inputs (token ids) as int32
                    array = array.astype(want)
                self._set(detail["index"], array)
            else:
                scale, zero_point, dtype, lo, hi = quant
                q = np.rint(array / scale)
                q += zero_point
                self._set(detail["index"], np.clip(q, lo, hi, out=q).astype(dtype))
        self._invoke()
        outputs = []
        for detail, quant in zip(self._outputs, self._out_quant):
            out = self._get(detail["index"])
            if quant is not None:
                scale, zero_point = quant[:2]
                out = (out.astype(np.float32) - zero_point) * np.float32(scale)
            outputs.append(out)
        return outputs


def open_session(path: str, *, threads: int, device: str, precision: str) -> LiteRtSession:
    if device not in ("intel-cpu", "arm-edge"):
        raise ValueError(f"the LiteRT CPU runtime does not run on {device}")
    return LiteRtSession(path, threads, precision)

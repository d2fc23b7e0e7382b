"""OpenVINO on the CPU plugin: one stream, one synchronous infer request, latency hint.

The CPU plugin runs "fp32" models in bf16 on CPUs with bf16 support unless told otherwise
(INFERENCE_PRECISION_HINT); the session asks for the requested precision (f32 for the
non-quantized parts of an int8 model) and reports what the compiled model actually uses,
read back from the compiled model and from the precision each compute layer of its
execution graph runs in."""

from __future__ import annotations

from collections import Counter

import numpy as np
import openvino as ov
from openvino._pyopenvino import InferRequest as InferRequestBinding

from agents.arrays import contiguous
from agents.runtimes.base import Session, check_inputs

# Requested precision -> INFERENCE_PRECISION_HINT. An int8 model's quantized layers run in
# int8 whatever the hint; the hint sets the rest, kept at f32 to compare with the fp32 cell.
HINTS = {"fp32": "f32", "int8": "f32", "bf16": "bf16", "fp16": "f16"}
FLOAT_NAMES = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}
COMPUTE_LAYERS = {"Convolution", "GroupConvolution", "Deconvolution", "FullyConnected",
                  "MatMul"}
INT8 = {"u8", "i8"}


def _compute_precisions(compiled) -> Counter:
    """How many compute layers of the execution graph run in each precision."""
    counts: Counter = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if "layerType" in info and info["layerType"].astype(str) in COMPUTE_LAYERS:
            counts[info["runtimePrecision"].astype(str)] += 1
    return counts


def _properties(compiled) -> dict:
    """The compiled model's properties (what benchmark_app prints before it measures), so a
    cross-check can see any setting the two do not share."""
    found = {}
    for key in compiled.get_property("SUPPORTED_PROPERTIES"):
        if key in ("SUPPORTED_PROPERTIES", "NETWORK_NAME"):
            continue
        try:
            found[key] = str(compiled.get_property(key))
        except RuntimeError:
            pass  # a property the plugin lists but cannot read back
    return found


class OpenVinoSession(Session):
    def __init__(self, path: str, threads: int, precision: str):
        if precision not in HINTS:
            raise ValueError(f"openvino runtime: unknown precision {precision!r} "
                             f"(allowed: {', '.join(HINTS)})")
        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
                  "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": HINTS[precision]}
        self._compiled = core.compile_model(core.read_model(path), "CPU", config)
        self._path, self._config = path, config
        self._request = self._compiled.create_infer_request()
        self._names = [port.get_any_name() for port in self._compiled.inputs]
        self._bound: dict = {}
        hint = self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        counts = _compute_precisions(self._compiled)
        int8_layers = sum(n for p, n in counts.items() if p in INT8)
        total = sum(counts.values())
        # What actually ran: int8 when most compute layers run in int8 (a weight-compressed
        # CNN, whose convolutions compute in float, is not), else the float precision used.
        self.precision = ("int8" if total and 2 * int8_layers > total
                          else FLOAT_NAMES.get(hint, hint))
        self.info = {"runtime": "openvino", "version": ov.get_version(), "device": "CPU",
                     "threads": int(self._compiled.get_property("INFERENCE_NUM_THREADS")),
                     "streams": int(self._compiled.get_property("NUM_STREAMS")),
                     "performance_hint": str(self._compiled.get_property("PERFORMANCE_HINT")),
                     "inference_precision": hint, "requested_precision": precision,
                     "compute_layer_precisions": dict(sorted(counts.items())),
                     "int8_compute_layers": f"{int8_layers}/{total}",
                     "inputs": {port.get_any_name(): str(port.get_partial_shape())
                                for port in self._compiled.inputs},
                     "compiled_properties": _properties(self._compiled)}

    latency_includes = ("OpenVINO's own request timer (InferRequest.latency, what "
                        "benchmark_app -inference_only reports) around one synchronous infer() "
                        "on an input set once in an OpenVINO-allocated tensor; the host-timed "
                        "Python call is stored as host_latency_p50_ms")

    def timed_call(self, inputs: dict[str, np.ndarray]):
        """The latency loop's call: set the inputs once, then run only infer(), as
        benchmark_app's inference-only mode does: its inputs are copied once into tensors
        OpenVINO allocates (aligned), never numpy memory shared with the plugin. Rebinding a
        tensor, the Python wrapper and copying the output out cost 20-60 us per call, 5-10%
        of a sub-millisecond model and not the runtime's latency (see runtime_clock)."""
        check_inputs(inputs, self._names, "openvino")
        tensors = {name: ov.Tensor(contiguous(array))  # copies, owned by OpenVINO
                   for name, array in inputs.items()}
        for name, tensor in tensors.items():
            self._request.set_tensor(name, tensor)
        request = self._request
        infer = InferRequestBinding.infer  # pybind's own infer: no OVDict, outputs shared

        def call():
            infer(request, {}, True, False)  # (inputs, share_outputs, decode_strings)
            return tensors
        return call

    def concurrent(self, inputs, concurrency, threads):
        """N infer requests of the model compiled again with the THROUGHPUT hint (its
        streams split the thread budget), N = OPTIMAL_NUMBER_OF_INFER_REQUESTS unless
        told, as benchmark_app -hint throughput does; each request's inputs set once."""
        from agents.probes.scenarios import Concurrency
        from agents.runtimes.base import thread_budget

        check_inputs(inputs, self._names, "openvino")
        budget = thread_budget(threads)
        config = {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_NUM_THREADS": budget,
                  "INFERENCE_PRECISION_HINT": self._config["INFERENCE_PRECISION_HINT"]}
        if concurrency:
            config["NUM_STREAMS"] = concurrency
        core = ov.Core()
        compiled = core.compile_model(core.read_model(self._path), "CPU", config)
        streams = int(compiled.get_property("NUM_STREAMS"))
        optimal = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        n = concurrency or optimal
        infer = InferRequestBinding.infer
        calls = []
        for _ in range(n):
            request = compiled.create_infer_request()
            for name, array in inputs.items():
                request.set_tensor(name, ov.Tensor(contiguous(array)))
            calls.append(lambda request=request: infer(request, {}, True, False))
        source = (f"measure: concurrency {concurrency}" if concurrency else
                  f"OpenVINO THROUGHPUT hint: OPTIMAL_NUMBER_OF_INFER_REQUESTS={optimal}")
        return Concurrency(calls, max(1, budget // max(streams, 1)), source,
                           {"streams": streams, "threads": int(compiled.get_property(
                               "INFERENCE_NUM_THREADS")), "optimal_requests": optimal,
                            "performance_hint": "THROUGHPUT"})

    def profiler(self):
        from agents.runtimes.openvino_profile import OpenVinoProfiler
        return OpenVinoProfiler(self._path, self._config)

    def runtime_clock(self) -> float:
        """Milliseconds OpenVINO measured for the last infer() of the request."""
        return self._request.latency

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        # The request reads the inputs in place (shared-memory tensors, as ONNX Runtime
        # reads numpy inputs) and the outputs are copied out of the request's buffers.
        check_inputs(inputs, self._names, "openvino")
        self._bound = {name: contiguous(array) for name, array in inputs.items()}
        for name, array in self._bound.items():  # alive while bound
            self._request.set_tensor(name, ov.Tensor(array, shared_memory=True))
        self._request.infer()
        return [self._request.get_output_tensor(i).data.copy()
                for i in range(len(self._compiled.outputs))]


def open_session(path: str, *, threads: int, device: str, precision: str) -> OpenVinoSession:
    if device not in ("intel-cpu", "arm-edge"):
        raise ValueError(f"the openvino CPU runtime does not run on {device}")
    return OpenVinoSession(path, threads, precision)

"""torch on the CPU: a saved torch.export program (.pt2), no pickle and no model code needed.

fp32 (and fp16 / bf16 casts) run eager unless the cell's runtime options ask for
`{"compile": true}`. int8 programs (PT2E: quantize / dequantize ops around float conv and
linear, int8 weights) are always compiled with inductor and freezing: only inductor's
freezing passes (registered by torchao's X86InductorQuantizer module) turn
dequantize -> conv into oneDNN int8 convolutions; eager would compute every conv in fp32
between simulated quantization steps, which is not int8 in any sense the figures mean.

Compilation specialises on the batch size (`dynamic=False`, fullgraph): each new batch
size compiles once, on its first call. The worker's first call (batch 1) is inside load
time, so the batch-1 compile lands in load_ms, never in latency; other sizes compile in
their first (accuracy or warm-up) call. `info["compile"]` records the backend, freezing,
each size's first-call time and whether inductor's graph cache served it. The precision
reported is what inductor realised: `int8` only if it lowered at least one conv / linear
to an int8 kernel, else `fp32` (with the counts, so a reader sees why)."""

from __future__ import annotations

import time

import numpy as np
import torch

from agents.runtimes.base import Session
from agents.runtimes.torch_io import as_arrays, positional

COMPILE_BACKEND = "inductor"
# Inductor counters of the int8 lowering (torchao's x86 freezing passes) and of its cache.
INT8_COUNTERS = {"qconv": "qconv_weight_prepack_matcher_count",
                 "qlinear": "qlinear_weight_prepack_matcher_count"}
CACHE_COUNTERS = ("fxgraph_cache_hit", "fxgraph_cache_miss", "fxgraph_cache_bypass")


def quantize_ops(module: torch.nn.Module) -> int:
    """quantize_per_* nodes of a PT2E-converted graph (0 for a float program)."""
    graph = getattr(module, "graph", None)
    if graph is None:
        return 0
    return sum(1 for n in graph.nodes if n.op == "call_function"
               and "quantized_decomposed.quantize_per" in str(n.target))


class TorchSession(Session):
    latency_includes = ("host: one forward of the program on CPU tensors made from the "
                        "numpy inputs once (zero-copy), under inference_mode")

    def __init__(self, path: str, threads: int, precision: str, options: dict):
        torch.set_num_threads(threads)
        self.info = {"runtime": "torch", "version": torch.__version__, "threads": threads}
        if precision == "int8":
            # Before loading: defines the quantized_decomposed ops the program calls and
            # registers torchao's int8 freezing passes with inductor (import side effects).
            import torchao
            import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: F401
            self.info["torchao"] = torchao.__version__
        module = torch.export.load(path).module()
        self.precision = precision
        self._quantized = quantize_ops(module)
        if precision == "int8" and not self._quantized:
            raise ValueError(f"{path}: precision int8 asked, but the program has no "
                             "quantize ops (not a PT2E int8 program)")
        self._compiled = bool(self._quantized or options.get("compile"))
        if self._compiled:
            # Freezing is read while dynamo traces, so it is patched around each compiling
            # call (_first_call), not passed as a compile option (that one reaches inductor
            # only, and inductor then fails on onednn.qconv_prepack of non-constant weights).
            self._module = torch.compile(module, backend=COMPILE_BACKEND, fullgraph=True,
                                         dynamic=False)
            self.info["mode"] = "compiled"
            self.info["compiled"] = "inductor+freezing"
            self.info["compile"] = {
                "backend": COMPILE_BACKEND, "freezing": True, "dynamic": False,
                "why": ("int8 program: inductor freezing realises the int8 kernels"
                        if self._quantized else "runtime option compile"),
                "first_call_ms": {}, "graph_cache": {}}
        else:
            self._module = module
            self.info["mode"] = "eager"
        self._shapes: set = set()

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        args = positional(inputs)
        key = tuple(tuple(a.shape) for a in args)
        if self._compiled and key not in self._shapes:
            return self._first_call(args, key)
        with torch.inference_mode():
            return as_arrays(self._module(*args))

    def timed_call(self, inputs: dict[str, np.ndarray]):
        args = positional(inputs)
        key = tuple(tuple(a.shape) for a in args)
        if self._compiled and key not in self._shapes:
            self._first_call(args, key)  # a new shape compiles outside the timed loop
        module = self._module

        def call():
            with torch.inference_mode():
                return module(*args)
        return call

    def profiler(self):
        from agents.runtimes.torch_profile import TorchProfiler
        return TorchProfiler(self)

    def concurrent(self, inputs, concurrency, threads):
        """The module called from N threads (aten ops release the GIL), torch's intra-op
        pool split between them; torch has no throughput hint."""
        from agents.probes.scenarios import Concurrency
        from agents.runtimes.base import split_budget

        n, per_call, source = split_budget(concurrency, threads)
        call = self.timed_call(inputs)
        torch.set_num_threads(per_call)  # process-wide: scenarios run after every timed loop
        return Concurrency([call] * n, per_call, source, {"torch_threads": per_call})

    def _first_call(self, args: list, key: tuple) -> list[np.ndarray]:
        """A batch shape not seen yet compiles now: time it and read what inductor did."""
        import torch._inductor.config as inductor_config
        from torch._dynamo.utils import counters

        limit = torch._dynamo.config.recompile_limit
        if len(self._shapes) >= limit:
            # Past the limit dynamo would quietly run the program eager.
            raise RuntimeError(f"torch runtime: more than {limit} batch shapes compiled; "
                               "a further one would run eager under a compiled label")
        before = dict(counters["inductor"])
        started = time.perf_counter()
        with torch.inference_mode(), inductor_config.patch(freezing=True):
            out = as_arrays(self._module(*args))
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        delta = {k: counters["inductor"].get(k, 0) - before.get(k, 0)
                 for k in (*INT8_COUNTERS.values(), *CACHE_COUNTERS)}
        self._shapes.add(key)
        compile_info = self.info["compile"]
        # the batch size for one input (as before), every input's shape otherwise
        batch = (str(key[0][0]) if len(key) == 1
                 else ";".join("x".join(map(str, shape)) for shape in key))
        compile_info["first_call_ms"][batch] = round(elapsed_ms, 1)
        compile_info["graph_cache"][batch] = {k.removeprefix("fxgraph_cache_"): delta[k]
                                              for k in CACHE_COUNTERS if delta[k]}
        if self._quantized and "int8_kernels" not in compile_info:
            kernels = {name: delta[key] for name, key in INT8_COUNTERS.items()}
            compile_info["int8_kernels"] = kernels
            if not any(kernels.values()):
                # quantize/dequantize around float ops: the arithmetic is fp32.
                self.precision = "fp32"
                compile_info["note"] = ("inductor lowered no conv / linear to an int8 kernel "
                                        "(counters 0): the program computes in fp32")
        return out


def open_session(path: str, *, threads: int, device: str, precision: str,
                 options: dict | None = None):
    if device == "nvidia-gpu":  # same artifact, the GPU agent's session
        from agents.runtimes.torch_cuda_rt import open_session as open_cuda
        return open_cuda(path, threads=threads, device=device, precision=precision,
                         options=options)
    if device not in ("intel-cpu", "arm-edge"):
        raise ValueError(f"the torch runtime does not run on {device}")
    return TorchSession(path, threads, precision, options or {})

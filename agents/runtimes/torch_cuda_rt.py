"""torch on an NVIDIA GPU: a torch.export program (.pt2) moved to CUDA, run in fp32, fp16 or
bf16, eager or torch.compile'd (cell option `{"compile": true}`).

Two timings: `run` is host end-to-end (numpy in, numpy out, transfers included); the
latency loop uses `timed_call`, which keeps the input on the GPU and synchronises the device
after every call, so each sample is the device's work, not the launch."""

from __future__ import annotations

import numpy as np
import torch

from agents.runtimes.base import Session
from agents.runtimes.torch_io import as_arrays, positional

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
LATENCY_INCLUDES = ("device: input already on the GPU, forward + torch.cuda.synchronize(); "
                    "no host transfers")


def cuda_status() -> dict:
    """Whether this runtime can run here: a version and device, or the reason not."""
    if not torch.cuda.is_available():
        built = torch.version.cuda
        return {"reason": f"torch {torch.__version__} (CUDA build {built or 'none'}) sees no "
                          f"CUDA device"}
    return {"version": f"torch {torch.__version__}, CUDA {torch.version.cuda}",
            "device": torch.cuda.get_device_name(0)}


def _to_cuda(program):
    """Constants that export baked in for the CPU move too (torch >= 2.6 has the pass)."""
    try:
        from torch.export.passes import move_to_device_pass
    except ImportError:
        return program.module().to("cuda")
    return move_to_device_pass(program, "cuda").module()


class TorchCudaSession(Session):
    latency_includes = LATENCY_INCLUDES

    def __init__(self, path: str, precision: str, options: dict):
        if not torch.cuda.is_available():
            raise RuntimeError(f"torch {torch.__version__} sees no CUDA device")
        if precision not in DTYPES:
            raise ValueError(f"the torch CUDA runtime runs fp32, fp16 or bf16, not {precision}")
        self.dtype = DTYPES[precision]
        module = _to_cuda(torch.export.load(path)).to(self.dtype)
        mode = "eager"
        if options.get("compile"):
            module = torch.compile(module, mode=options.get("compile_mode", "default"))
            mode = f"torch.compile({options.get('compile_mode', 'default')})"
        self._module = module
        self.precision = precision
        self.info = {"runtime": "torch-cuda", "version": torch.__version__,
                     "cuda": torch.version.cuda, "device": torch.cuda.get_device_name(0),
                     "mode": mode, "threads": torch.get_num_threads()}

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            return as_arrays(self._module(*positional(inputs, "cuda", self.dtype)))

    def timed_call(self, inputs: dict[str, np.ndarray]):
        args = positional(inputs, "cuda", self.dtype)
        module, sync = self._module, torch.cuda.synchronize

        def call():
            with torch.inference_mode():
                module(*args)
            sync()
        return call

    def profiler(self):
        from agents.runtimes.torch_profile import TorchProfiler
        return TorchProfiler(self, cuda=True)

    def concurrent(self, inputs, concurrency, threads):
        """N CUDA streams, one per request in flight, each call synchronising its own
        stream (trtexec --streams N does the same with TensorRT)."""
        from agents.probes.scenarios import Concurrency

        n = concurrency or 2
        args = positional(inputs, "cuda", self.dtype)
        module = self._module
        calls = []
        for _ in range(n):
            stream = torch.cuda.Stream()

            def call(stream=stream):
                with torch.inference_mode(), torch.cuda.stream(stream):
                    module(*args)
                stream.synchronize()
            calls.append(call)
        source = f"measure: concurrency {concurrency}" if concurrency else "2 CUDA streams"
        return Concurrency(calls, torch.get_num_threads(), source, {"cuda_streams": n})

    def reset_device_peak(self) -> None:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    def device_memory(self) -> dict:
        from agents.probes.gpu import process_memory_mb

        return {"peak_device_mem_mb": torch.cuda.max_memory_allocated() / 2**20,
                "peak_device_reserved_mb": torch.cuda.max_memory_reserved() / 2**20,
                "device_mem_nvml_mb": process_memory_mb()}


def open_session(path: str, *, threads: int, device: str, precision: str,
                 options: dict | None = None) -> TorchCudaSession:
    if device != "nvidia-gpu":
        raise ValueError(f"the torch CUDA runtime runs on nvidia-gpu, not {device}")
    torch.set_num_threads(threads)
    return TorchCudaSession(path, precision, options or {})

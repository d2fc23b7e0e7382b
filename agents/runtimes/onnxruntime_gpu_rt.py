"""ONNX Runtime on an NVIDIA GPU: the CUDA execution provider (TensorRT's first where its
libraries load), from the `onnxruntime-gpu` package (pip install 'harness[agent-gpu]').

ONNX Runtime does not fail when a GPU provider cannot load (missing CUDA or cuDNN
libraries, a driver too old): it logs and builds a CPU session. Measuring that and calling
it GPU would be a lie, so the session checks which providers it really got and refuses to
run on the CPU; a node the GPU provider has no kernel for still runs on the CPU provider,
and the per-layer profile says which ones (each layer's provider).

The latency loop binds the inputs to GPU memory once (I/O binding) and keeps the outputs
there, and ONNX Runtime synchronises the device at the end of each run, so a sample is the
device's work without host transfers; `run` is host end-to-end (numpy in and out)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from agents.runtimes.base import Session, check_inputs
from agents.runtimes.onnxruntime_options import session_options

CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
GPU_PROVIDERS = (TENSORRT, CUDA)
LATENCY_INCLUDES = ("device: inputs bound in GPU memory (I/O binding), run + ONNX Runtime's "
                    "end-of-run device synchronisation; outputs stay on the GPU")


def gpu_status() -> dict:
    """Whether this onnxruntime build has a GPU provider: a version and the providers, or
    the reason not (what `harness doctor` and the agent's labels report)."""
    available = ort.get_available_providers()
    if CUDA not in available:
        return {"reason": f"onnxruntime {ort.__version__} is a CPU build (providers: "
                          f"{', '.join(available)}); a GPU agent needs onnxruntime-gpu"}
    return {"version": f"onnxruntime-gpu {ort.__version__}",
            "providers": [p for p in available if p in GPU_PROVIDERS]}


def tensorrt_loads() -> str | None:
    """None where TensorRT's Python package (and so its libraries) imports, else why not."""
    try:
        import tensorrt  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - a broken install is a reason
        return f"TensorRT does not import ({type(exc).__name__}: {str(exc)[:160]})"
    return None


def providers_for(available: list[str], tensorrt_reason: str | None,
                  device_id: int = 0) -> tuple[list, list[str]]:
    """The providers to ask for, in ONNX Runtime's priority order, and the notes on what
    was left out and why. Raises RuntimeError where this build has no GPU provider."""
    if CUDA not in available:
        raise RuntimeError(
            f"onnxruntime {ort.__version__} has no CUDA execution provider (available: "
            f"{', '.join(available)}): install onnxruntime-gpu instead of onnxruntime on a GPU "
            "agent (pip install 'harness[agent-gpu]')")
    notes, chosen = [], []
    if TENSORRT in available and tensorrt_reason is None:
        chosen.append((TENSORRT, {"device_id": device_id}))
    elif TENSORRT in available:
        notes.append(f"{TENSORRT} left out: {tensorrt_reason}")
    chosen += [(CUDA, {"device_id": device_id}), "CPUExecutionProvider"]
    return chosen, notes


def gpu_provider_or_raise(asked: list, got: list[str]) -> str:
    """The GPU provider the session really has; a session that fell back to the CPU is an
    error, never a GPU measurement."""
    for name in GPU_PROVIDERS:
        if name in got:
            return name
    wanted = [p[0] if isinstance(p, tuple) else p for p in asked]
    raise RuntimeError(f"onnxruntime fell back to the CPU: asked for {wanted}, the session has "
                       f"{got} (the GPU provider's libraries did not load: CUDA / cuDNN "
                       "missing or a driver too old; ONNX Runtime's log above says which)")


class OrtGpuSession(Session):
    latency_includes = LATENCY_INCLUDES

    def __init__(self, path: str, threads: int, precision: str):
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"the onnxruntime GPU runtime measures fp32 or fp16 graphs, not "
                             f"{precision}")
        self._path, self._threads = path, threads
        self._providers, notes = providers_for(ort.get_available_providers(), tensorrt_loads())
        self._session = ort.InferenceSession(path, sess_options=session_options(threads),
                                             providers=self._providers)
        got = self._session.get_providers()
        provider = gpu_provider_or_raise(self._providers, got)
        self._names = [i.name for i in self._session.get_inputs()]
        self.precision = precision
        self.info = {"runtime": "onnxruntime-gpu", "version": ort.__version__,
                     "execution_provider": provider, "providers": got,
                     "device": ort.get_device(), "threads": threads,
                     "inputs": {i.name: [i.type, list(i.shape)]
                                for i in self._session.get_inputs()}}
        if notes:
            self.info["notes"] = notes

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        check_inputs(inputs, self._names, "onnxruntime-gpu")
        return self._session.run(None, inputs)

    def timed_call(self, inputs: dict[str, np.ndarray]):
        check_inputs(inputs, self._names, "onnxruntime-gpu")
        binding = self._session.io_binding()
        for name, array in inputs.items():  # copied to the GPU once, here
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(
                np.ascontiguousarray(array), "cuda", 0))
        for output in self._session.get_outputs():
            binding.bind_output(output.name, "cuda", 0)
        run = self._session.run_with_iobinding
        return lambda: run(binding)

    def profiler(self):
        from agents.runtimes.onnxruntime_profile import OrtProfiler
        return OrtProfiler(self._path, session_options(self._threads),
                           providers=self._providers)

    def concurrent(self, inputs, concurrency, threads):
        from agents.runtimes.onnxruntime_concurrent import concurrent_runs
        return concurrent_runs(self._path, inputs, concurrency or 2, threads,
                               self._providers, self._names)

    def device_memory(self) -> dict:
        from agents.probes.gpu import process_memory_mb
        return {"device_mem_nvml_mb": process_memory_mb()}


def open_session(path: str, *, threads: int, device: str, precision: str) -> OrtGpuSession:
    if device != "nvidia-gpu":
        raise ValueError(f"the onnxruntime GPU runtime runs on nvidia-gpu, not {device}")
    return OrtGpuSession(path, threads, precision)

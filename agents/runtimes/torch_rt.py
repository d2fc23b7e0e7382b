"""torch eager on a saved torch.export program (.pt2): no pickle, no model code needed."""

from __future__ import annotations

import numpy as np
import torch


class TorchSession:
    def __init__(self, path: str, threads: int, precision: str):
        torch.set_num_threads(threads)
        self._module = torch.export.load(path).module()
        self.precision = precision
        self.info = {"runtime": "torch", "version": torch.__version__, "threads": threads,
                     "mode": "eager"}

    def run(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self._module(torch.from_numpy(batch)).numpy()


def open_session(path: str, *, threads: int, device: str, precision: str,
                 options: dict | None = None):
    if device == "nvidia-gpu":  # same artifact, the GPU agent's session
        from agents.runtimes.torch_cuda_rt import open_session as open_cuda
        return open_cuda(path, threads=threads, device=device, precision=precision,
                         options=options)
    if device not in ("intel-cpu", "arm-edge"):
        raise ValueError(f"the torch runtime does not run on {device}")
    return TorchSession(path, threads, precision)

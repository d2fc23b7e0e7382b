"""The fp32 source's outputs for each test sample (what fidelity is measured against),
computed at batch 1: every output of the model, stacked sample by sample. A torch module
runs in torch; an ONNX file in ONNX Runtime, on the original file."""

from __future__ import annotations

import numpy as np

from agents.arrays import contiguous
from agents.evalpack import samples_in, take


def sample_inputs(specs, arrays: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    return {s.name: contiguous(take(arrays[s.name], s, [i])) for s in specs}


def reference_outputs(loaded, arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    """[output K of every sample]."""
    run = _onnx_runner(loaded) if loaded.file is not None else _torch_runner(loaded)
    per_sample = [run(sample_inputs(loaded.inputs, arrays, i))
                  for i in range(samples_in(loaded.inputs, arrays))]
    return [np.stack([sample[k] for sample in per_sample]) for k in range(len(per_sample[0]))]


def _torch_runner(loaded):
    import torch

    from agents.runtimes.torch_io import as_arrays

    def run(inputs: dict) -> list[np.ndarray]:
        with torch.no_grad():
            return as_arrays(loaded.module(*[torch.from_numpy(a) for a in inputs.values()]))
    return run


def _onnx_runner(loaded):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    # the file as its author wrote it: no graph optimisation that could change numerics
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(loaded.file, options, providers=["CPUExecutionProvider"])
    return lambda inputs: session.run(None, inputs)

"""The fp32 source's outputs for each test sample (what fidelity is measured against),
computed at batch 1: every output of the model, stacked sample by sample."""

from __future__ import annotations

import numpy as np

from agents.evalpack import samples_in, take


def sample_inputs(specs, arrays: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    return {s.name: np.ascontiguousarray(take(arrays[s.name], s, [i])) for s in specs}


def reference_outputs(loaded, arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    """[output K of every sample] for a torch module source."""
    import torch

    from agents.runtimes.torch_io import as_arrays

    per_sample = []
    with torch.no_grad():
        for i in range(samples_in(loaded.inputs, arrays)):
            inputs = sample_inputs(loaded.inputs, arrays, i)
            out = loaded.module(*[torch.from_numpy(a) for a in inputs.values()])
            per_sample.append(as_arrays(out))
    return [np.stack([sample[k] for sample in per_sample]) for k in range(len(per_sample[0]))]

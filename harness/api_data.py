"""The Python API's data: what a user passes (an array or tensor, (x, y), {name: x} or
({name: x}, y)) as the model's named input arrays, checked against its inputs, and a digest
that names the data in the cache."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

Data = np.ndarray | torch.Tensor | tuple


def numpy_of(value) -> np.ndarray:
    return value.detach().cpu().numpy() if torch.is_tensor(value) else np.asarray(value)


def arrays_of(data: Data | None, what: str, specs, labelled: bool = False):
    """({input name: array}, labels or None) from x, (x, y), {name: x} or ({name: x}, y),
    arrays or tensors, in the model's layout; each input cast to its dtype (int64 token ids
    stay int64). Clear errors on missing inputs, empty or unlabelled data."""
    from agents.arrays import contiguous
    from agents.evalpack import samples_in

    if data is None:
        raise ValueError(f"{what}: no data given")
    x, y = (data if isinstance(data, tuple) else (data, None))
    names = [s.name for s in specs]
    if isinstance(x, dict):
        missing = [n for n in names if n not in x]
        extra = [n for n in x if n not in names]
        if missing or extra:
            raise ValueError(f"{what}: the model's inputs are {', '.join(names)}; "
                             + (f"missing {missing[0]!r}" if missing else
                                f"{extra[0]!r} is not one of them"))
        arrays = {s.name: numpy_of(x[s.name]) for s in specs}
    elif len(specs) == 1:
        arrays = {specs[0].name: numpy_of(x)}
    else:
        raise ValueError(f"{what}: the model has {len(specs)} inputs ({', '.join(names)}); "
                         f"pass a dict {{name: array}}")
    arrays = {s.name: contiguous(arrays[s.name].astype(s.dtype, copy=False)) for s in specs}
    for spec in specs:
        if arrays[spec.name].ndim != len(spec.dims):
            raise ValueError(f"{what}: input {spec.name!r} has {arrays[spec.name].ndim} dims; "
                             f"the model's is {list(spec.dims)}")
    counts = {int(arrays[s.name].shape[s.batch_axis]) for s in specs
              if s.batch_axis is not None}
    if len(counts) > 1:
        raise ValueError(f"{what}: the inputs hold different numbers of samples "
                         f"{sorted(counts)}")
    samples = samples_in(specs, arrays)
    if y is not None:
        y = np.asarray(numpy_of(y), dtype=np.int64)
    if samples == 0:
        raise ValueError(f"{what}: zero samples (allowed: at least 1)")
    if labelled and y is None:
        raise ValueError(f"{what}: labels are needed, pass (inputs, labels)")
    if y is not None and len(y) != samples:
        raise ValueError(f"{what}: {samples} inputs but {len(y)} labels")
    return arrays, y


def digest_of(*parts) -> str:
    """Of arrays, dicts of named arrays and None."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, dict):
            for name in sorted(part):
                h.update(name.encode() + np.ascontiguousarray(part[name]).tobytes())
        elif part is not None:
            h.update(np.ascontiguousarray(part).tobytes())
    return h.hexdigest()[:16]

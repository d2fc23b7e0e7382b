"""A digest of the data a build uses (calibration and training arrays, labels): part of
every variant key, since a user's npz or image folder can change under the same name."""

from __future__ import annotations


def digest_of_dataset(dataset) -> str:
    import hashlib

    import numpy as np

    h = hashlib.sha256(dataset.name.encode())
    for arrays in (dataset.calib, dataset.train or {}):
        for name in sorted(arrays):
            h.update(name.encode() + np.ascontiguousarray(arrays[name]).tobytes())
    if dataset.train_y is not None:
        h.update(np.ascontiguousarray(dataset.train_y).tobytes())
    return h.hexdigest()[:20]

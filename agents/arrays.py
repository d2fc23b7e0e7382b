"""Array helpers shared by the eval pack and the runtimes."""

from __future__ import annotations

import numpy as np


def contiguous(array) -> np.ndarray:
    """A C-contiguous ndarray of `array` that keeps its rank. np.ascontiguousarray turns a
    0-d array into shape (1,), which a runtime rejects for a scalar input (shape [])."""
    return np.require(array, requirements="C")

"""A dataset: named input arrays (in the model's own layout, the batch axis holding the
samples) for its splits, and labels where it has them.

Fixed splits, so calibration, fine-tuning and quality use disjoint data and the same
numbers come back on every run. Calibration uses the calibration split, never the test
split. A dataset whose arrays can be made for any value of a named axis (synthetic) says so
with `reshape`; a fixed one serves only the shape its arrays have."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from agents.cell import InputSpec
from agents.evalpack import samples_in


@dataclass(frozen=True)
class Dataset:
    name: str
    inputs: tuple[InputSpec, ...]
    calib: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    test_y: np.ndarray | None          # None: no labels, quality is fidelity only
    train: dict[str, np.ndarray] | None = None
    train_y: np.ndarray | None = None
    # shape -> (calib, test) at that shape of the named axes (None: fixed shapes only)
    reshape: Callable[[dict], tuple[dict, dict]] | None = field(default=None, compare=False)
    shape: dict = field(default_factory=dict)  # the named axes' values of the arrays here
    split: dict = field(default_factory=dict)  # how the splits were made (recorded)

    @property
    def labelled(self) -> bool:
        return self.test_y is not None

    @property
    def test_samples(self) -> int:
        return samples_in(self.inputs, self.test)

    def test_arrays(self, shape: dict | None = None) -> dict[str, np.ndarray]:
        """The test inputs at `shape` (the named axes' values)."""
        return self.at(shape).test

    def at(self, shape: dict | None) -> "Dataset":
        """This dataset with its inputs at `shape`."""
        shape = {k: v for k, v in (shape or {}).items()}
        if not shape or shape == self.shape:
            return self
        if self.reshape is None:
            raise ValueError(f"dataset '{self.name}' has fixed shapes {self.shape or '(none)'}; "
                             f"it cannot serve {shape}")
        import dataclasses
        calib, test = self.reshape(shape)
        return dataclasses.replace(self, calib=calib, test=test, shape=shape)

    # The single-input view the training methods and the Python API use.
    def _only(self, arrays: dict | None) -> np.ndarray | None:
        if arrays is None:
            return None
        if len(arrays) != 1:
            raise ValueError(f"dataset '{self.name}' has inputs {sorted(arrays)}; this needs a "
                             f"model with one input")
        return next(iter(arrays.values()))

    @property
    def calib_x(self) -> np.ndarray:
        return self._only(self.calib)

    @property
    def test_x(self) -> np.ndarray:
        return self._only(self.test)

    @property
    def train_x(self) -> np.ndarray | None:
        return self._only(self.train)

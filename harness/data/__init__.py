"""Datasets: labelled digits (scikit-learn) and synthetic unlabelled inputs.

Every dataset has fixed splits so calibration, fine-tuning and accuracy use disjoint data
and the same numbers come back on every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dataset:
    name: str
    input_shape: tuple[int, ...]
    train_x: np.ndarray | None
    train_y: np.ndarray | None
    calib_x: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray | None  # None: no labels, accuracy is reported as fidelity only

    @property
    def labelled(self) -> bool:
        return self.test_y is not None


DATASET_MODULES = {"digits": "harness.data.digits", "synthetic": "harness.data.synthetic"}


def dataset_module(name: str) -> str | None:
    return DATASET_MODULES.get(name)


def load_dataset(name: str, input_shape: tuple[int, ...] | None) -> Dataset:
    if name == "digits":
        from harness.data.digits import load_digits_dataset
        return load_digits_dataset()
    if name == "synthetic":
        from harness.data.synthetic import load_synthetic_dataset
        if input_shape is None:
            raise ValueError("the synthetic dataset needs an input_shape")
        return load_synthetic_dataset(tuple(input_shape))
    raise ValueError(f"unknown dataset {name!r} (allowed: digits, synthetic)")

"""Seeded inputs drawn from each input's spec, with no labels (quality is fidelity to the
fp32 source): floats standard-normal (roughly what normalised images and embeddings look
like) or uniform in the spec's range, integers uniform in their range (token ids), a
`fill` value as given (attention masks). The same specs and shape give the same data on
every host; any value of a named axis can be drawn."""

from __future__ import annotations

import zlib

import numpy as np

from harness.data.base import Dataset

CALIB_SAMPLES = 128
TEST_SAMPLES = 32
DEFAULT_AXIS = 16  # a named axis the matrix does not sweep gets this value


def _draw(spec, samples: int, shape: dict, rng: np.random.Generator) -> np.ndarray:
    dims = spec.shape(samples, shape) if spec.batch_axis is not None else spec.shape(1, shape)
    dtype = np.dtype(spec.dtype)
    if spec.fill is not None:
        return np.full(dims, spec.fill, dtype=dtype)
    if dtype.kind in "iu":
        low = int(spec.low if spec.low is not None else 0)
        high = int(spec.high if spec.high is not None else 2)
        return rng.integers(low, high, size=dims, dtype=dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=dims).astype(bool)
    if spec.low is not None and spec.high is not None:
        return rng.uniform(spec.low, spec.high, size=dims).astype(dtype)
    if dtype in (np.float32, np.float64):  # drawn in its own precision: half the time
        return rng.standard_normal(dims, dtype=dtype)
    return rng.standard_normal(dims).astype(dtype)


def _arrays(inputs, shape: dict, samples: int, salt: str) -> dict[str, np.ndarray]:
    seed = zlib.crc32(repr(([s.to_json() for s in inputs], sorted(shape.items()),
                            salt)).encode())
    rng = np.random.default_rng(seed)
    return {s.name: _draw(s, samples, shape, rng) for s in inputs}


def _default_shape(inputs) -> dict:
    return {axis: DEFAULT_AXIS for s in inputs for axis in s.axes}


def check(setting, inputs, base_dir) -> str | None:
    return None if inputs else ("the synthetic dataset needs the model's inputs "
                                "(input_shape or inputs)")


def labelled(setting, base_dir) -> bool:
    return False


def load(setting, inputs, base_dir=None) -> Dataset:
    problem = check(setting, inputs, base_dir)
    if problem:
        raise ValueError(problem)
    inputs = tuple(inputs)

    def reshape(shape: dict) -> tuple[dict, dict]:
        full = _default_shape(inputs) | shape
        return (_arrays(inputs, full, CALIB_SAMPLES, "calib"),
                _arrays(inputs, full, TEST_SAMPLES, "test"))

    shape = _default_shape(inputs)
    calib, test = reshape(shape)
    return Dataset(name="synthetic", inputs=inputs, calib=calib, test=test, test_y=None,
                   reshape=reshape, shape=shape)


def load_synthetic_dataset(input_shape: tuple[int, ...]) -> Dataset:
    from agents.cell import specs_for
    return load("synthetic", specs_for(input_shape))

"""scikit-learn's 8x8 handwritten digits, upscaled to 1x32x32 so a forward pass of the
digits CNN takes long enough to time (around a millisecond on one core). One float input,
labelled."""

from __future__ import annotations

import numpy as np

from harness.data.base import Dataset

DIGITS_SIDE = 32
TEST_SAMPLES = 360
CALIB_SAMPLES = 180
SPLIT_SEED = 20261127
INPUT_SHAPE = (1, DIGITS_SIDE, DIGITS_SIDE)


def _upscale(images: np.ndarray) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(images.astype(np.float32) / 16.0).unsqueeze(1)  # N,1,8,8 in [0,1]
    x = F.interpolate(x, size=(DIGITS_SIDE, DIGITS_SIDE), mode="bilinear", align_corners=False)
    return ((x - 0.5) / 0.5).numpy().astype(np.float32)  # centred on zero


def check(setting, inputs, base_dir) -> str | None:
    if inputs and (len(inputs) != 1 or inputs[0].dtype != "float32"
                   or tuple(inputs[0].dims) != ("batch", *INPUT_SHAPE)):
        return (f"dataset 'digits' feeds one float32 input of shape [batch, "
                f"{', '.join(map(str, INPUT_SHAPE))}]; the model has "
                f"{[(s.name, s.dtype, list(s.dims)) for s in inputs]}")
    return None


def labelled(setting, base_dir) -> bool:
    return True


def load(setting="digits", inputs=(), base_dir=None) -> Dataset:
    from sklearn.datasets import load_digits

    from agents.cell import BATCH_AXIS, InputSpec

    problem = check(setting, inputs, base_dir)
    if problem:
        raise ValueError(problem)
    name = inputs[0].name if inputs else "input"
    spec = InputSpec(name, "float32", (BATCH_AXIS, *INPUT_SHAPE))
    bunch = load_digits()
    images = _upscale(bunch.images)
    labels = bunch.target.astype(np.int64)
    order = np.random.RandomState(SPLIT_SEED).permutation(len(labels))
    test, calib, train = (order[:TEST_SAMPLES], order[TEST_SAMPLES:TEST_SAMPLES + CALIB_SAMPLES],
                          order[TEST_SAMPLES + CALIB_SAMPLES:])
    return Dataset(name="digits", inputs=(spec,), calib={name: images[calib]},
                   test={name: images[test]}, test_y=labels[test],
                   train={name: images[train]}, train_y=labels[train])


def load_digits_dataset() -> Dataset:
    return load()

"""Shared by the method and build tests: the trained digits CNN and a small digits dataset,
so each fine-tune or distillation takes a second or two."""

import dataclasses

import pytest

from harness.methods.context import BuildContext

TRAIN_SAMPLES = 240  # 192 to train on, 48 held out for validation


@pytest.fixture(scope="session")
def digits_model(cache_dir):
    from harness.models.digits_cnn import load_builtin
    module, _, _ = load_builtin("digits_cnn", cache_dir)
    return module


@pytest.fixture(scope="session")
def small_digits():
    from harness.data.digits import load_digits_dataset
    data = load_digits_dataset()
    return dataclasses.replace(data, train={"input": data.train_x[:TRAIN_SAMPLES]},
                               train_y=data.train_y[:TRAIN_SAMPLES])


@pytest.fixture
def digits_ctx(small_digits, cache_dir):
    return BuildContext(dataset=small_digits, cache_dir=cache_dir, input_shape=(1, 32, 32),
                        model_name="digits", threads=2)

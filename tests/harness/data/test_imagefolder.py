"""`dataset: {imagefolder: {...}}`: labelled images in class folders, resized and normalised
for a model's one float input; folders that cannot feed the model are refused at plan
time."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from agents.cell import InputSpec
from harness.data import check_dataset, is_labelled, load_dataset
from harness.matrix.schema import ImageFolderDataset

IMAGE = (InputSpec("input", "float32", ("batch", 3, 16, 16)),)


@pytest.fixture
def folder(tmp_path):
    """Two classes, dark and bright images, six each, of odd sizes."""
    rng = np.random.default_rng(0)
    for label, level in (("dark", 30), ("bright", 220)):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(6):
            pixels = np.clip(rng.normal(level, 10, (20 + i, 24, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / label / f"{i}.png")
    return tmp_path


def setting(**fields):
    return ImageFolderDataset(imagefolder={"path": "images", "size": [16, 16]} | fields)


def test_images_are_resized_normalised_and_labelled(folder):
    assert check_dataset(setting(), IMAGE, folder) is None and is_labelled(setting(), folder)
    data = load_dataset(setting(), IMAGE, folder)
    assert data.test["input"].shape == (3, 3, 16, 16) and data.test["input"].dtype == np.float32
    assert data.split["classes"] == ["bright", "dark"]  # ImageFolder sorts class folders
    assert (data.split["test"], data.split["calib"], data.split["train"]) == (3, 2, 7)
    # the label follows the image: bright images normalise above zero, dark ones below
    for x, y in zip(data.test["input"], data.test_y):
        assert (x.mean() > 0) == (y == 0)


@pytest.mark.parametrize("fields, inputs, message", [
    ({"path": "nowhere"}, IMAGE, "not found"),
    ({}, (InputSpec("input", "float32", ("batch", 3, 32, 32)),), "feeds one float32 input"),
    ({"mean": [0.5]}, IMAGE, "feeds one float32 input [batch, 1, 16, 16]"),
    ({"std": [0.2, 0.2]}, IMAGE, "mean has 3 channels, std 2"),
])
def test_folders_that_cannot_feed_the_model(folder, fields, inputs, message):
    problem = check_dataset(setting(**fields), inputs, folder)
    assert problem is not None and message in problem, problem


def test_one_class_is_not_enough(folder):
    import shutil
    shutil.rmtree(folder / "images" / "dark")
    assert "needs two or more classes" in check_dataset(setting(), IMAGE, folder)

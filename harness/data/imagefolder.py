"""`dataset: {imagefolder: {path, size: [H, W], mean, std}}`: labelled images in class
folders (torchvision's ImageFolder layout: PATH/CLASS/IMAGE), resized to `size`, scaled to
[0, 1] and normalised with `mean` / `std` (ImageNet's by default), for a model with one
float input [batch, C, H, W]. Split by a seeded permutation: 30% test, 20% calibration,
the rest for training (at least one image each)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.data.base import Dataset

SPLIT_SEED = 20261130
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _path(setting, base_dir: Path) -> Path:
    path = Path(setting.imagefolder.path)
    return path if path.is_absolute() else Path(base_dir) / path


def _classes(folder: Path) -> dict[str, int]:
    return {d.name: sum(1 for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            for d in sorted(folder.iterdir()) if d.is_dir()}


def _dims(dims) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def check(setting, inputs, base_dir: Path) -> str | None:
    spec = setting.imagefolder
    folder = _path(setting, base_dir)
    if not folder.is_dir():
        return f"image folder {folder} not found"
    classes = _classes(folder)
    if len(classes) < 2 or sum(classes.values()) < 3:
        return (f"{folder} holds {len(classes)} class folder(s) with {sum(classes.values())} "
                f"images; an image folder needs two or more classes and three or more images")
    channels = len(spec.mean)
    want = ("batch", channels, *spec.size)
    if len(inputs) != 1 or inputs[0].dtype != "float32" or tuple(inputs[0].dims) != want:
        has = ", ".join(f"{s.name} {_dims(s.dims)} {s.dtype}" for s in inputs)
        return (f"the image folder feeds one float32 input {_dims(want)} (size and mean give "
                f"H, W and C); the model has {has}")
    if len(spec.std) != channels:
        return f"mean has {channels} channels, std {len(spec.std)}"
    return None


def labelled(setting, base_dir: Path) -> bool:
    return True


def load(setting, inputs, base_dir: Path) -> Dataset:
    from torchvision import datasets, transforms

    problem = check(setting, inputs, base_dir)
    if problem:
        raise ValueError(problem)
    spec = setting.imagefolder
    convert = "L" if len(spec.mean) == 1 else "RGB"
    transform = transforms.Compose([
        transforms.Lambda(lambda image: image.convert(convert)),
        transforms.Resize(tuple(spec.size)), transforms.ToTensor(),
        transforms.Normalize(spec.mean, spec.std)])
    folder = datasets.ImageFolder(str(_path(setting, base_dir)), transform=transform)
    images = np.stack([folder[i][0].numpy() for i in range(len(folder))]).astype(np.float32)
    labels = np.asarray(folder.targets, dtype=np.int64)
    order = np.random.RandomState(SPLIT_SEED).permutation(len(labels))
    n_test = max(1, int(0.3 * len(labels)))
    n_calib = max(1, int(0.2 * len(labels)))
    test, calib, train = (order[:n_test], order[n_test:n_test + n_calib],
                          order[n_test + n_calib:])
    name = inputs[0].name
    return Dataset(name=f"imagefolder:{_path(setting, base_dir).name}", inputs=tuple(inputs),
                   calib={name: images[calib]}, test={name: images[test]},
                   test_y=labels[test], train={name: images[train]}, train_y=labels[train],
                   split={"test": len(test), "calib": len(calib), "train": len(train),
                          "classes": folder.classes, "how": f"seeded permutation {SPLIT_SEED}"})

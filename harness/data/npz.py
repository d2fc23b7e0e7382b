"""`dataset: {npz: PATH}`: the user's own arrays, one per input name, in the model's layout
(the batch axis holds the samples; an input without a batch axis is stored as it is fed),
and optionally `labels` (one per sample).

Splits: arrays under `test/NAME`, `calib/NAME` and `train/NAME` (each split may have its
own `labels` as `test/labels`, ...) are used as given. Plain `NAME` arrays are split by a
seeded permutation of the samples: a quarter (at least one) for test, a quarter for
calibration, the rest for training when labelled; the split is recorded with the dataset.
The arrays fix the values of the model's named axes (no measure.shapes sweep of them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agents.arrays import contiguous
from harness.data.base import Dataset

SPLITS = ("test", "calib", "train")
SPLIT_SEED = 20261130


def _path(setting, base_dir: Path) -> Path:
    path = Path(setting.npz)
    return path if path.is_absolute() else Path(base_dir) / path


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _split_arrays(arrays: dict) -> dict[str, dict]:
    """{split: {name: array}} for explicit splits, else {"all": arrays}."""
    if any("/" in k for k in arrays):
        out: dict = {}
        for key, value in arrays.items():
            split, _, name = key.partition("/")
            out.setdefault(split, {})[name] = value
        return out
    return {"all": arrays}


def _samples(spec, array) -> int | None:
    return None if spec.batch_axis is None else int(array.shape[spec.batch_axis])


def _problems(split: str, arrays: dict, inputs) -> str | None:
    where = "" if split == "all" else f"{split}/"
    names = {s.name for s in inputs}
    missing = [s.name for s in inputs if s.name not in arrays]
    if missing:
        return f"has no array {where}{missing[0]!r} for the model's input (arrays: " \
               f"{', '.join(sorted(arrays))})"
    extra = [k for k in arrays if k not in names and k != "labels"]
    if extra:
        return f"has array {where}{extra[0]!r}, which is no input of the model " \
               f"(inputs: {', '.join(sorted(names))}; labels go in 'labels')"
    counts = set()
    for spec in inputs:
        array = arrays[spec.name]
        if array.ndim != len(spec.dims):
            return (f"array {where}{spec.name!r} has {array.ndim} dims, the input "
                    f"{list(spec.dims)} has {len(spec.dims)}")
        for i, dim in enumerate(spec.dims):
            if isinstance(dim, int) and array.shape[i] != dim:
                return (f"array {where}{spec.name!r} has {array.shape[i]} at dim {i}; the "
                        f"input fixes it at {dim}")
        kind, want = np.dtype(array.dtype).kind, np.dtype(spec.dtype).kind
        if (kind in "fc") != (want in "fc") or (want == "b") != (kind == "b"):
            return (f"array {where}{spec.name!r} is {array.dtype}; the input is {spec.dtype}")
        if _samples(spec, array) is not None:
            counts.add(_samples(spec, array))
    if len(counts) > 1:
        return f"the arrays of {split} hold different numbers of samples: {sorted(counts)}"
    if "labels" in arrays and counts and len(arrays["labels"]) not in counts:
        return f"{where}labels has {len(arrays['labels'])} entries for {counts.pop()} samples"
    return None


def check(setting, inputs, base_dir: Path) -> str | None:
    path = _path(setting, base_dir)
    if not path.is_file():
        return f"npz file {path} not found"
    try:
        arrays = _arrays(path)
    except Exception as exc:  # noqa: BLE001 - not a zip, not numpy, pickled objects...
        return f"{path} is not a numpy .npz archive of arrays ({type(exc).__name__}: {exc})"
    splits = _split_arrays(arrays)
    unknown = [s for s in splits if s not in (*SPLITS, "all")]
    if unknown:
        return f"{path}: unknown split {unknown[0]!r} (allowed prefixes: {', '.join(SPLITS)})"
    if "all" not in splits and "test" not in splits:
        return f"{path}: explicit splits need test/ arrays"
    for split, split_arrays in splits.items():
        problem = _problems(split, split_arrays, inputs)
        if problem:
            return f"{path} {problem}"
    return None


def fixed_shape(setting, inputs, base_dir: Path) -> dict:
    splits = _split_arrays(_arrays(_path(setting, base_dir)))
    return _shape(inputs, splits.get("all") or splits["test"])


def labelled(setting, base_dir: Path) -> bool:
    path = _path(setting, base_dir)
    try:
        with np.load(path, allow_pickle=False) as data:
            return any(k == "labels" or k.endswith("/labels") for k in data.files)
    except (OSError, ValueError):
        return False


def _shape(inputs, arrays: dict) -> dict:
    """The named axes' values the arrays fix."""
    shape = {}
    for spec in inputs:
        for i, dim in enumerate(spec.dims):
            if isinstance(dim, str) and dim != "batch":
                shape[dim] = int(arrays[spec.name].shape[i])
    return shape


def _take(inputs, arrays: dict, index) -> dict:
    return {s.name: (arrays[s.name] if s.batch_axis is None
                     else np.take(arrays[s.name], index, axis=s.batch_axis)) for s in inputs}


def _cast(inputs, arrays: dict) -> dict:
    return {s.name: contiguous(arrays[s.name].astype(s.dtype, copy=False))
            for s in inputs}


def load(setting, inputs, base_dir: Path) -> Dataset:
    problem = check(setting, inputs, base_dir)
    if problem:
        raise ValueError(problem)
    path = _path(setting, base_dir)
    splits = _split_arrays(_arrays(path))
    name = f"npz:{path.name}"
    if "all" in splits:
        arrays = _cast(inputs, splits["all"])
        labels = splits["all"].get("labels")
        total = next((_samples(s, arrays[s.name]) for s in inputs if s.batch_axis is not None),
                     1)
        order = np.random.RandomState(SPLIT_SEED).permutation(total)
        quarter = max(1, total // 4)
        test, calib = order[:quarter], order[quarter:2 * quarter] if total > 1 else order
        train = order[2 * quarter:] if labels is not None and total > 2 else None
        return Dataset(name=name, inputs=tuple(inputs), calib=_take(inputs, arrays, calib),
                       test=_take(inputs, arrays, test),
                       test_y=None if labels is None else labels[test],
                       train=None if train is None else _take(inputs, arrays, train),
                       train_y=None if train is None else labels[train],
                       shape=_shape(inputs, arrays),
                       split={"test": len(test), "calib": len(calib),
                              "train": 0 if train is None else len(train),
                              "how": f"seeded permutation {SPLIT_SEED}"})
    test = _cast(inputs, splits["test"])
    calib = _cast(inputs, splits.get("calib", splits["test"]))
    train = splits.get("train")
    return Dataset(name=name, inputs=tuple(inputs), calib=calib, test=test,
                   test_y=splits["test"].get("labels"),
                   train=None if train is None else _cast(inputs, train),
                   train_y=None if train is None else train.get("labels"),
                   shape=_shape(inputs, test),
                   split={"how": "explicit test/calib/train arrays",
                          "calib": "calib" if "calib" in splits else "the test arrays"})

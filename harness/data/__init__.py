"""Datasets, one module per kind, one registry: `digits` (labelled, scikit-learn),
`synthetic` (drawn from each input's spec, unlabelled), `npz` (the user's arrays, named by
input, optional labels) and `imagefolder` (labelled images in class folders).

A model's `dataset:` is a registry name, or a mapping {npz: PATH} / {imagefolder: {...}}.
Each plugin has `check(setting, inputs, base_dir) -> str | None` (plan time: does the data
fit the model's inputs?), `labelled(setting, base_dir) -> bool` and
`load(setting, inputs, base_dir) -> Dataset`."""

from __future__ import annotations

import importlib
from pathlib import Path

from agents.cell import specs_for
from harness.data.base import Dataset  # noqa: F401

DATASETS = {"digits": "harness.data.digits", "synthetic": "harness.data.synthetic",
            "npz": "harness.data.npz", "imagefolder": "harness.data.imagefolder"}
LABELLED = ("digits", "imagefolder")  # always labelled (npz: when the file has labels)


def _name(setting) -> str:
    if isinstance(setting, str):
        return setting
    return "npz" if hasattr(setting, "npz") else "imagefolder"


def dataset_module(setting) -> str | None:
    return DATASETS.get(_name(setting))


def _plugin(setting):
    name = _name(setting)
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r} (allowed: {', '.join(DATASETS)})")
    return importlib.import_module(DATASETS[name])


def check_dataset(setting, inputs, base_dir: Path) -> str | None:
    return _plugin(setting).check(setting, tuple(specs_for(inputs)), Path(base_dir))


def fixed_shape(setting, inputs, base_dir: Path) -> dict:
    """The named axes' values the data fixes ({} for data drawn at any shape)."""
    plugin = _plugin(setting)
    fixed = getattr(plugin, "fixed_shape", None)
    return fixed(setting, tuple(specs_for(inputs)), Path(base_dir)) if fixed else {}


def is_labelled(setting, base_dir: Path) -> bool:
    return _plugin(setting).labelled(setting, Path(base_dir))


def load_dataset(setting, inputs, base_dir: Path | None = None) -> Dataset:
    """The dataset for a model with these inputs (agents.cell.InputSpec, or a (C, H, W)
    shape: one float input named 'input')."""
    return _plugin(setting).load(setting, tuple(specs_for(inputs)), Path(base_dir or "."))

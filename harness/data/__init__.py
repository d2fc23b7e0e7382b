"""Datasets, one module per kind, one registry: `digits` (labelled, scikit-learn) and
`synthetic` (drawn from each input's spec, unlabelled)."""

from __future__ import annotations

import importlib

from agents.cell import specs_for
from harness.data.base import Dataset  # noqa: F401

DATASETS = {"digits": "harness.data.digits", "synthetic": "harness.data.synthetic"}
LABELLED = ("digits",)  # datasets with a labelled train split (training methods need one)


def dataset_module(name: str) -> str | None:
    return DATASETS.get(name)


def load_dataset(name: str, inputs) -> Dataset:
    """The dataset `name` for a model with these inputs (a list of agents.cell.InputSpec,
    or a (C, H, W) shape: one float input named 'input')."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r} (allowed: {', '.join(DATASETS)})")
    return importlib.import_module(DATASETS[name]).load(specs_for(inputs))



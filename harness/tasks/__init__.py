"""Tasks: what quality means for a model's outputs, one module per task, one registry.

A task names its metrics (measured on the agent by agents.probes.quality), the primary one
with its direction (with labels, and without: then a fidelity measure to the fp32 source
with a threshold per precision), and its training loss (training methods on a task
without one are skipped with the reason)."""

from __future__ import annotations

import importlib

from harness.tasks.base import Task  # noqa: F401

TASKS = {"classification": "harness.tasks.classification",
         "embedding": "harness.tasks.embedding",
         "generic": "harness.tasks.generic"}


def task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r} (allowed: {', '.join(TASKS)})")
    return importlib.import_module(TASKS[name]).TASK


def quality_columns(task_name: str, metrics: dict, labelled: bool, precision: str,
                    reference_quality: float | None) -> dict:
    """The measurement row's quality columns for a task: the gating figure, its metric,
    the fp32 source's value of a labelled metric, the threshold of a fidelity one."""
    plugin = task(task_name)
    value, metric = plugin.quality(metrics, labelled)
    fidelity = metric != plugin.labelled_metric
    return {"quality": value, "quality_metric": metric,
            "reference_quality": None if fidelity else reference_quality,
            "quality_threshold": plugin.fidelity_threshold(precision) if fidelity else None}

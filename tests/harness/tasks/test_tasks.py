"""Tasks say which measured figure gates a pick: a labelled metric where the data has
labels, else fidelity to the fp32 source with a threshold per precision; and whether the
training methods have a loss to train with."""

from __future__ import annotations

import numpy as np
import pytest

from agents.probes.quality import task_metrics
from harness.build.parity import tolerance
from harness.tasks import TASKS, quality_columns, task
from harness.tasks.base import FIDELITY_COSINE_MIN


def per_sample(*outputs):
    return [[o[i] for o in outputs] for i in range(len(outputs[0]))]


LOGITS = np.random.default_rng(0).standard_normal((40, 5)).astype(np.float32)


def test_classification_gates_on_top1_with_labels_and_on_fidelity_without():
    labels = LOGITS.argmax(1)
    labels[:10] = (labels[:10] + 1) % 5
    noisy = LOGITS + np.float32(0.05)
    metrics = task_metrics("classification", per_sample(noisy), [LOGITS], labels)
    labelled = quality_columns("classification", metrics, True, "int8", 0.75)
    assert labelled == {"quality": pytest.approx(0.75), "quality_metric": "top1",
                        "reference_quality": 0.75, "quality_threshold": None}
    unlabelled = quality_columns("classification", metrics, False, "int8", None)
    assert unlabelled["quality_metric"] == "fidelity_cosine_min"
    assert unlabelled["quality"] == metrics["fidelity_cosine_min"] < 1.0
    assert unlabelled["quality_threshold"] == FIDELITY_COSINE_MIN["int8"]
    assert unlabelled["reference_quality"] is None


def test_embedding_gates_on_its_own_cosine():
    emb = np.random.default_rng(1).standard_normal((6, 4, 8)).astype(np.float32)
    bent = emb.copy()
    bent[0] = -bent[0]  # one sample points the other way
    metrics = task_metrics("embedding", per_sample(bent), [emb], None)
    columns = quality_columns("embedding", metrics, False, "fp16", None)
    assert columns["quality_metric"] == "cosine_min"
    assert columns["quality"] == pytest.approx(-1.0)
    assert columns["quality_threshold"] == FIDELITY_COSINE_MIN["fp16"]


def test_generic_takes_the_worst_output():
    a = np.random.default_rng(2).standard_normal((8, 3)).astype(np.float32)
    b = np.random.default_rng(3).standard_normal((8, 2, 4)).astype(np.float32)
    worse = b + np.random.default_rng(4).standard_normal(b.shape).astype(np.float32)
    metrics = task_metrics("generic", per_sample(a, worse), [a, b], None)
    columns = quality_columns("generic", metrics, False, "fp32", None)
    assert columns["quality"] == metrics["out1_cosine_min"] < metrics["out0_cosine_min"]


def test_only_classification_can_train():
    assert {name: task(name).loss for name in TASKS} == {
        "classification": "cross_entropy", "embedding": None, "generic": None}


def test_the_build_parity_check_uses_the_same_thresholds():
    for precision, cosine in FIDELITY_COSINE_MIN.items():
        assert tolerance(precision)["cosine_min"] == cosine
        assert task("generic").fidelity_threshold(precision) == cosine


def test_an_unknown_task_is_named():
    with pytest.raises(ValueError, match="unknown task 'segmentation'"):
        task("segmentation")

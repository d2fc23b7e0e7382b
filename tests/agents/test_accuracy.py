import numpy as np
import pytest

from agents.probes.accuracy import evaluate, fidelity, topk_accuracy


def test_topk():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.15, 0.05], [0.2, 0.3, 0.5]])
    labels = np.array([1, 1, 0])
    assert topk_accuracy(logits, labels, 1) == pytest.approx(1 / 3)
    assert topk_accuracy(logits, labels, 2) == pytest.approx(2 / 3)
    assert topk_accuracy(logits, labels, 5) == 1.0  # k capped at the class count


def test_fidelity_identical_and_perturbed():
    ref = np.random.default_rng(0).standard_normal((20, 10)).astype(np.float32)
    same = fidelity(ref.copy(), ref)
    assert same["fidelity_top1_agreement"] == 1.0 and same["fidelity_max_abs_err"] == 0.0
    assert same["fidelity_sqnr_db"] is None
    noisy = fidelity(ref + 0.01, ref)
    assert noisy["fidelity_max_abs_err"] == pytest.approx(0.01, rel=1e-3)
    assert noisy["fidelity_sqnr_db"] > 30


def test_evaluate_batches_through_the_session():
    x = np.random.default_rng(1).standard_normal((37, 4)).astype(np.float32)
    weights = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    calls = []

    def run(batch):
        calls.append(len(batch))
        return batch @ weights

    labels = (x @ weights).argmax(1)
    result = evaluate(run, x, labels, x @ weights)
    assert sum(calls) == 37 and max(calls) <= 16
    assert result["accuracy_top1"] == 1.0 and result["fidelity_top1_agreement"] == 1.0
    assert result["accuracy_samples"] == 37

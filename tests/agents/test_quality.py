import numpy as np
import pytest

from agents.probes.quality import columns, fidelity, run_samples, task_metrics, topk_accuracy


def test_topk():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.15, 0.05], [0.2, 0.3, 0.5]])
    labels = np.array([1, 1, 0])
    assert topk_accuracy(logits, labels, 1) == pytest.approx(1 / 3)
    assert topk_accuracy(logits, labels, 2) == pytest.approx(2 / 3)
    assert topk_accuracy(logits, labels, 5) == 1.0  # k capped at the class count


def per_sample(*outputs):
    """[[out0 of sample i, out1 of sample i, ...] for each sample]."""
    return [[o[i] for o in outputs] for i in range(len(outputs[0]))]


def test_fidelity_identical_and_perturbed_per_output():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((20, 10)).astype(np.float32)
    state = rng.standard_normal((20, 2, 8)).astype(np.float32)
    same = fidelity(per_sample(ref, state), [ref, state])
    assert same["fidelity_max_abs_err"] == 0.0 and same["fidelity_sqnr_db"] is None
    assert same["out0_cosine_min"] == same["out1_cosine_min"] == pytest.approx(1.0)
    noisy = fidelity(per_sample(ref + 0.01, state * 0.5), [ref, state])
    assert noisy["out0_max_abs_err"] == pytest.approx(0.01, rel=1e-3)
    assert noisy["out0_sqnr_db"] > 30
    # the state is halved: cosine 1, but an SQNR of 6 dB, which is what the worst reads
    assert noisy["out1_cosine_min"] == pytest.approx(1.0)
    assert noisy["fidelity_sqnr_db"] == pytest.approx(10 * np.log10(4), abs=1e-6)


def test_classification_uses_labels_and_agreement():
    logits = np.random.default_rng(1).standard_normal((37, 3)).astype(np.float32)
    labels = logits.argmax(1)
    labels[:4] = (labels[:4] + 1) % 3
    m = task_metrics("classification", per_sample(logits), [logits], labels)
    assert m["top1"] == pytest.approx(33 / 37) and m["top1_agreement"] == 1.0
    assert m["samples"] == 37
    assert columns(m)["accuracy_top1"] == m["top1"]
    assert columns(m)["fidelity_top1_agreement"] == 1.0


def test_embedding_reports_cosine_to_the_source():
    emb = np.random.default_rng(2).standard_normal((10, 16)).astype(np.float32)
    m = task_metrics("embedding", per_sample(emb * 2.0), [emb], None)
    assert m["cosine_mean"] == pytest.approx(1.0) and "top1" not in m


def test_samples_run_one_by_one():
    calls = []

    def run(inputs):
        calls.append(inputs["x"].shape)
        return [inputs["x"] * 2]

    samples = [{"x": np.full((1, 3), i, np.float32)} for i in range(5)]
    outputs = run_samples(run, samples)
    assert calls == [(1, 3)] * 5 and len(outputs) == 5 and outputs[4][0][0, 0] == 8.0


def test_an_unknown_task_is_refused():
    with pytest.raises(ValueError, match="allowed: classification, embedding, generic"):
        task_metrics("ranking", per_sample(np.zeros((2, 2))), [np.zeros((2, 2))], None)

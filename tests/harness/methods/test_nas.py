"""NAS on the digits data: real short training, candidate latencies measured by the agent's
worker process, a Pareto set stored once and shared by every member variant."""

import json

import pytest
import torch

from harness.data import load_dataset
from harness.methods.context import BuildContext, MethodError
from harness.methods.nas import NasCandidate, _pareto, apply_nas
from harness.models.digits_cnn import load_builtin
from harness.matrix.schema import NasMethod

STEP = NasMethod(name="nas", kind="nas", trials=4, seed=1,
                 space={"widths": [4, 8], "depths": [1], "kernel_sizes": [3]},
                 train={"epochs": 1, "lr": 1e-2})


@pytest.fixture(scope="module")
def digits(cache_dir):
    model, shape, _ = load_builtin("digits_cnn", cache_dir)
    return model, shape, load_dataset("digits", shape)


@pytest.fixture(scope="module")
def searched(digits, tmp_path_factory):
    model, shape, dataset = digits
    ctx = BuildContext(dataset=dataset, cache_dir=tmp_path_factory.mktemp("nas"),
                       input_shape=shape, threads=1)
    first = apply_nas(model, STEP.model_copy(update={"member": 1}), ctx)
    return model, ctx, first


def test_first_member_is_the_fastest_pareto_candidate(searched):
    _, _, first = searched
    report = first.report
    pareto = report["pareto"]
    assert report["member"] == 1 and report["arch"] == pareto[0]["arch"]
    assert [p["latency_ms"] for p in pareto] == sorted(p["latency_ms"] for p in pareto)
    assert all(p["latency_ms"] > 0 and p["latency"]["iterations"] >= 30 for p in pareto)
    assert report["latencies_measured"] == report["architectures"] >= 1
    assert isinstance(first.module, NasCandidate)
    out = first.module(torch.zeros(2, 1, 32, 32))
    assert out.shape == (2, 10)


def test_other_members_reuse_the_search_and_its_measurements(searched):
    model, ctx, first = searched
    pareto = first.report["pareto"]
    again = apply_nas(model, STEP.model_copy(update={"member": len(pareto)}), ctx)
    assert again.report["reused"] is True
    assert again.report["arch"] == pareto[-1]["arch"]
    with pytest.raises(MethodError, match="Pareto candidate"):
        apply_nas(model, STEP.model_copy(update={"member": len(pareto) + 1}), ctx)


def test_search_results_are_stored_for_inspection(searched):
    _, ctx, _ = searched
    stored = list((ctx.cache_dir / "nas").glob("*/search.json"))
    assert len(stored) == 1
    data = json.loads(stored[0].read_text())
    assert data["trials"] == STEP.trials and data["candidates"]


def test_pareto_keeps_only_undominated_candidates_fastest_first():
    def cand(tag, acc, ms):
        return {"arch": {"tag": tag}, "val_top1": acc, "latency_ms": ms}
    front = _pareto([cand("a", 0.9, 2.0), cand("b", 0.8, 1.0), cand("c", 0.7, 3.0),
                     cand("d", 0.95, 5.0), cand("a", 0.9, 2.0)])
    assert [f["arch"]["tag"] for f in front] == ["b", "a", "d"]


def test_non_image_models_are_refused(digits, tmp_path):
    model, _, dataset = digits
    ctx = BuildContext(dataset=dataset, cache_dir=tmp_path, input_shape=(64,))
    with pytest.raises(MethodError, match="input_shape"):
        apply_nas(model, STEP, ctx)

"""The derived-model cache: a model-level chain is applied once per (weights, steps, data,
code), whatever the formats; a QAT graph, which cannot be pickled, is kept as an exported
program and comes back with its traits and its train/eval switch."""

import dataclasses
import types

import numpy as np
import torch

from harness.build import derived
from harness.matrix.schema import QatMethod, SchemeSpec, TrainSpec
from harness.models import weights_digest
from harness.models.traits import traits_of


def test_a_qat_graph_is_trained_once_and_reloaded_from_its_exported_program(digits_model,
                                                                           digits_ctx,
                                                                           tmp_path,
                                                                           monkeypatch):
    # digits_model and digits_ctx (a 240-sample train split) come from tests/harness/conftest
    loaded = types.SimpleNamespace(module=digits_model,
                                   weights_digest=weights_digest(digits_model))
    step = QatMethod(name="qat", kind="qat", scheme=SchemeSpec(symmetric=False),
                     train=TrainSpec(epochs=0, lr=1e-4, batch_size=64))
    ctx = dataclasses.replace(digits_ctx, cache_dir=tmp_path)  # an empty derived cache
    first, report = derived.derived_model(loaded, (step,), ctx)
    assert list((tmp_path / "derived").glob("*.pt2")), "the QAT graph was not cached"
    assert not list((tmp_path / "derived").glob("*.pt")), "a pickle of a QAT graph?"

    def trained_again(*args, **kwargs):
        raise AssertionError("the model-level steps ran again")

    monkeypatch.setattr(derived, "apply_model_steps", trained_again)
    again, report_again = derived.derived_model(loaded, (step,), ctx)
    assert report_again == report
    assert traits_of(again).qdq == traits_of(first).qdq == report["qat"]["scheme"]
    x = torch.from_numpy(np.ascontiguousarray(ctx.dataset.test_x[:16]))
    with torch.no_grad():
        assert torch.equal(first.eval()(x), again.eval()(x))  # eval() works on the reload
    quant_ops = [n for n in again.graph.nodes if "quantize_per" in str(n.target)]
    assert len(quant_ops) == report["qat"]["quantize_dequantize_ops"]


def test_a_cached_report_comes_back_under_this_chains_step_names():
    """Names are not in the derived cache's key: an entry one matrix made for 'bf16' serves
    another's 'cast-bf16', and its report must say 'cast-bf16'."""
    from harness.matrix.methods import CastMethod, PruneMethod

    steps = [PruneMethod(name="slim", kind="prune", structure="channel", sparsity=0.3),
             CastMethod(name="cast-bf16", kind="cast", dtype="bf16")]
    cached = {"slim30": {"kind": "prune", "channels_after": 244},
              "bf16": {"kind": "cast", "dtype": "bf16"}}
    assert derived.renamed(cached, steps) == {"slim": cached["slim30"],
                                              "cast-bf16": cached["bf16"]}
    # an entry whose kind no step has stays under its own name rather than vanish
    assert derived.renamed({"kd": {"kind": "distill"}}, steps) == {"kd": {"kind": "distill"}}

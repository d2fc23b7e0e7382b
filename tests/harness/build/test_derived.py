"""The derived-model cache: a model-level chain is applied once per (weights, steps, data,
code), whatever the formats; a QAT graph, which cannot be pickled, is kept as an exported
program and comes back with its traits and its train/eval switch."""

import dataclasses
import types

import numpy as np
import torch

from harness.build import derived
from harness.data.digits import load_digits_dataset
from harness.matrix.schema import QatMethod, SchemeSpec, TrainSpec
from harness.methods.context import BuildContext
from harness.models import weights_digest
from harness.models.traits import traits_of


def _context(cache_dir):
    data = load_digits_dataset()
    small = dataclasses.replace(data, train={"input": data.train_x[:240]},
                                train_y=data.train_y[:240])
    return BuildContext(dataset=small, cache_dir=cache_dir, input_shape=(1, 32, 32),
                        model_name="digits", threads=2)


def test_a_qat_graph_is_trained_once_and_reloaded_from_its_exported_program(cache_dir,
                                                                           tmp_path,
                                                                           monkeypatch):
    from harness.models.digits_cnn import load_builtin

    module, _, _ = load_builtin("digits_cnn", cache_dir)
    loaded = types.SimpleNamespace(module=module, weights_digest=weights_digest(module))
    step = QatMethod(name="qat", kind="qat", scheme=SchemeSpec(symmetric=False),
                     train=TrainSpec(epochs=0, lr=1e-4, batch_size=64))
    ctx = _context(tmp_path)
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

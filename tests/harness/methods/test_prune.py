"""Pruning on the trained digits CNN (small train split, one-epoch fine-tunes) and, without
fine-tuning, on an unlabelled torchvision model."""

import numpy as np
import pytest
import torch

from harness.methods.context import BuildContext, MethodError
from harness.methods.prune import apply_prune
from harness.models import weights_digest
from harness.matrix.schema import PruneMethod, TrainSpec

ONE_EPOCH = TrainSpec(epochs=1, lr=5e-4, batch_size=64)


def prune_step(**kw) -> PruneMethod:
    return PruneMethod(name="p", kind="prune", **({"finetune": ONE_EPOCH} | kw))


def test_channel_pruning_makes_a_smaller_model_that_exports_to_onnx(digits_model, digits_ctx,
                                                                   tmp_path):
    import onnxruntime as ort

    from harness.formats import FORMATS

    digest = weights_digest(digits_model)
    out = apply_prune(digits_model, prune_step(structure="channel", sparsity=0.3), digits_ctx)
    assert weights_digest(digits_model) == digest  # the input model is untouched
    r = out.report
    assert r["channel_ratio_removed"] == pytest.approx(0.3, abs=0.02)
    assert r["params_after"] < 0.7 * r["params_before"]
    assert r["macs_after"] < 0.7 * r["macs_before"]
    assert r["params_after"] == sum(p.numel() for p in out.module.parameters())
    assert set(r["history"][0]) >= {"val_top1_before_finetune", "val_top1_after_finetune",
                                    "finetune"}
    assert r["validation_samples"] == 48
    # Removing 30% of the channels costs accuracy (0.375 here before fine-tuning) and one
    # epoch of fine-tuning brings most of it back (0.98 here); a broken prune or fine-tune
    # stays far below 0.9.
    assert r["val_top1_unpruned"] >= 0.95
    assert r["val_top1"] >= 0.9
    assert r["val_top1"] > r["history"][0]["val_top1_before_finetune"]

    x = digits_ctx.dataset.test_x[:2]
    path = tmp_path / "pruned.onnx"
    from tests.packs import single_input_spec
    FORMATS["onnx"].export(out.module, (torch.from_numpy(x),), path, single_input_spec())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        want = out.module(torch.from_numpy(x)).numpy()
    assert got.shape == (2, 10)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def test_unstructured_pruning_zeroes_half_the_weights_and_keeps_the_params(digits_model,
                                                                          digits_ctx):
    out = apply_prune(digits_model, prune_step(structure="unstructured", sparsity=0.5,
                                               scope="layer"), digits_ctx)
    r = out.report
    assert r["weight_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert r["val_top1"] >= 0.9  # 1.0 here: magnitude pruning + a fine-tune keeps accuracy
    assert r["params_after"] == r["params_before"]
    # the masks are made permanent: a plain module with the original parameter names
    assert set(out.module.state_dict()) == set(digits_model.state_dict())
    conv = out.module.features[0].weight
    assert float((conv == 0).float().mean()) == pytest.approx(0.5, abs=0.02)


def test_iterative_taylor_channel_pruning(digits_model, digits_ctx):
    out = apply_prune(digits_model, prune_step(structure="channel", sparsity=0.3,
                                               importance="taylor", scope="layer", steps=2),
                      digits_ctx)
    history = out.report["history"]
    assert [h["step"] for h in history] == [1, 2]
    assert out.report["channels_before"] > history[0]["channels"] > history[1]["channels"]
    assert out.report["channel_ratio_removed"] == pytest.approx(0.3, abs=0.03)
    assert "train split" in out.report["taylor_gradients"]


def test_iterative_taylor_unstructured_keeps_the_mask_while_fine_tuning(digits_model,
                                                                       digits_ctx):
    out = apply_prune(digits_model, prune_step(structure="unstructured", sparsity=0.5,
                                               importance="taylor", steps=2), digits_ctx)
    history = out.report["history"]
    assert [h["weight_sparsity"] for h in history] == pytest.approx([0.25, 0.5], abs=0.01)
    # fine-tuned after the last step, yet still exactly the target sparsity
    assert out.report["weight_sparsity"] == pytest.approx(0.5, abs=0.01)


def test_structural_pruning_of_an_unlabelled_torchvision_model():
    import torchvision

    from harness.data.synthetic import load_synthetic_dataset

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    shape = (3, 64, 64)
    ctx = BuildContext(dataset=load_synthetic_dataset(shape), cache_dir=None,
                       input_shape=shape, threads=2)
    out = apply_prune(model, prune_step(structure="channel", sparsity=0.3, finetune=None), ctx)
    r = out.report
    assert r["params_after"] < 0.7 * r["params_before"]
    assert r["val_top1"] is None and r["val_top1_unpruned"] is None
    with torch.no_grad():
        assert out.module(torch.randn(2, *shape)).shape == (2, 1000)


def test_fine_tuning_needs_labels():
    from harness.data.synthetic import load_synthetic_dataset

    shape = (1, 32, 32)
    ctx = BuildContext(dataset=load_synthetic_dataset(shape), cache_dir=None, input_shape=shape)
    with pytest.raises(MethodError, match="labelled train split"):
        apply_prune(torch.nn.Linear(4, 2), prune_step(structure="channel", sparsity=0.3), ctx)


def test_diverging_fine_tune_fails_the_method(digits_model, digits_ctx):
    # lr <= 10 passes validation, and BatchNorm keeps this CNN finite at lr 10: bypass it
    runaway = TrainSpec.model_construct(epochs=1, lr=1e9, optimizer="sgd", batch_size=32, seed=0)
    step = prune_step(structure="channel", sparsity=0.3, finetune=runaway)
    with pytest.raises(MethodError, match="diverged"):
        apply_prune(digits_model, step, digits_ctx)

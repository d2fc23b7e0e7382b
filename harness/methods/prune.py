"""Pruning: `channel` removes whole filters with torch-pruning's dependency graph, so the dense
model really gets smaller and faster; `unstructured` zeroes single weights with
torch.nn.utils.prune (no dense speedup: only the compressed artifact shrinks).

Both run `steps` times towards the target sparsity (linear schedule), fine-tuning after every
step on the train part of the train split and reporting top-1 on its held-out part."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.methods.context import BuildContext, MethodError, MethodOutput
from harness.methods.training import top1, torch_threads, train, train_split

TAYLOR_BATCHES = 4       # batches whose loss gradients give first-order (Taylor) importance
TAYLOR_BATCH_SIZE = 64
PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def apply_prune(module: nn.Module, step, ctx: BuildContext) -> MethodOutput:
    model = copy.deepcopy(module).eval()
    data = _Data(ctx, step)
    example = torch.randn(1, *ctx.input_shape)
    with torch_threads(ctx.threads):
        params_before, macs_before = _params_macs(model, example)
        report = {"structure": step.structure, "target_sparsity": step.sparsity,
                  "scope": step.scope, "importance": step.importance, "steps": step.steps,
                  "params_before": params_before, "macs_before": macs_before,
                  "val_top1_unpruned": data.val_top1(model)}
        if step.importance == "taylor":
            report["taylor_gradients"] = (
                f"cross-entropy on {TAYLOR_BATCHES} x {TAYLOR_BATCH_SIZE} samples of the "
                + ("train split" if data.labelled else
                   "calibration inputs, labelled with the model's own predictions"))
        if step.structure == "channel":
            model, details = _prune_channels(model, step, ctx, data, example)
        else:
            model, details = _prune_unstructured(model, step, ctx, data)
        params_after, macs_after = _params_macs(model, example)
    report |= details | {
        "params_after": params_after, "macs_after": macs_after,
        "params_ratio": round(params_after / params_before, 4),
        "macs_ratio": round(macs_after / macs_before, 4) if macs_before and macs_after else None,
        "val_top1": data.val_top1(model), "validation_samples": data.val_samples}
    return MethodOutput(model.eval(), report)


class _Data:
    """The train / held-out split, or nothing for an unlabelled dataset (pruning without
    fine-tuning still works there; Taylor importance then uses the model's own predictions)."""

    def __init__(self, ctx: BuildContext, step):
        self.ctx = ctx
        self.finetune = step.finetune if step.finetune and step.finetune.epochs > 0 else None
        dataset = ctx.dataset
        self.labelled = dataset.train_x is not None and dataset.train_y is not None
        if self.finetune is not None and not self.labelled:
            raise MethodError(f"prune {step.name!r}: fine-tuning needs a labelled train split; "
                              f"dataset '{dataset.name}' has none (set finetune: null)")
        if self.labelled:
            self.train, self.val = train_split(dataset, validation=True)
        else:
            self.train, self.val = None, None
        self.val_samples = int(len(self.val[1])) if self.val else 0

    def val_top1(self, model: nn.Module) -> float | None:
        if self.val is None:
            return None
        return round(top1(model, *self.val, threads=self.ctx.threads), 5)

    def gradient_batches(self, model: nn.Module):
        """(x, y) batches for first-order importance: the train part, or on an unlabelled
        dataset the calibration inputs labelled with the model's own predictions."""
        x, y = self.train if self.train is not None else (self.ctx.dataset.calib_x, None)
        order = np.random.RandomState(0).permutation(len(x))
        for i in range(TAYLOR_BATCHES):
            idx = order[i * TAYLOR_BATCH_SIZE:(i + 1) * TAYLOR_BATCH_SIZE]
            if not len(idx):
                break
            inputs = torch.from_numpy(np.ascontiguousarray(x[idx]))
            if y is None:
                with torch.no_grad():
                    labels = model.eval()(inputs).argmax(1)
            else:
                labels = torch.from_numpy(np.ascontiguousarray(y[idx]))
            yield inputs, labels

    def fine_tune(self, model: nn.Module, label: str) -> dict | None:
        if self.finetune is None:
            return None
        return train(model, self.train, self.finetune, threads=self.ctx.threads, label=label)

    def accumulate_gradients(self, model: nn.Module) -> None:
        """Loss gradients over a few batches, in eval mode so BatchNorm statistics stay put."""
        model.eval()
        model.zero_grad(set_to_none=True)
        for x, y in self.gradient_batches(model):
            F.cross_entropy(model(x), y).backward()


def _params_macs(model: nn.Module, example: torch.Tensor) -> tuple[int, int | None]:
    from harness.methods.model_stats import params_and_macs
    return params_and_macs(model, example)


def output_layers(model: nn.Module, example: torch.Tensor) -> list[nn.Module]:
    """The layers whose output channels are the model's outputs (the classifier): never
    pruned, so the output shape stays. Linear/conv layers with as many outputs as the model,
    else the last conv/linear layer."""
    with torch.no_grad():
        out = model.eval()(example)
    if not isinstance(out, torch.Tensor) or out.dim() < 2:
        raise MethodError(f"pruning needs a model with one (batch, classes) tensor output, "
                          f"got {type(out).__name__}")
    classes = out.shape[1]
    layers = [m for m in model.modules() if isinstance(m, PRUNABLE)]
    heads = [m for m in layers if (m.out_features if isinstance(m, nn.Linear)
                                   else m.out_channels) == classes]
    return heads[-1:] if heads else layers[-1:]


def _channels(model: nn.Module, ignored: list[nn.Module]) -> int:
    return sum(m.out_features if isinstance(m, nn.Linear) else m.out_channels
               for m in model.modules()
               if isinstance(m, PRUNABLE) and all(m is not i for i in ignored))


def _prune_channels(model, step, ctx, data: _Data, example) -> tuple[nn.Module, dict]:
    import torch_pruning as tp

    ignored = output_layers(model, example)
    channels_before = _channels(model, ignored)
    if step.importance == "taylor":
        importance = tp.importance.GroupTaylorImportance()
    else:
        importance = tp.importance.GroupMagnitudeImportance(p=1 if step.importance == "l1" else 2)
    pruner = tp.pruner.BasePruner(
        model, example, importance=importance, pruning_ratio=step.sparsity,
        global_pruning=step.scope == "global", iterative_steps=step.steps,
        ignored_layers=ignored)
    history = []
    for k in range(1, step.steps + 1):
        if step.importance == "taylor":
            data.accumulate_gradients(model)
        pruner.step()
        model.zero_grad(set_to_none=True)  # gradients of the removed channels' shapes
        entry = {"step": k, "channels": _channels(model, ignored),
                 "params": sum(p.numel() for p in model.parameters()),
                 "val_top1_before_finetune": data.val_top1(model)}
        fine = data.fine_tune(model, label=f"prune fine-tune (step {k}/{step.steps})")
        if fine is not None:
            entry |= {"val_top1_after_finetune": data.val_top1(model), "finetune": fine}
        history.append(entry)
    with torch.no_grad():
        model.eval()(example)  # raises if the dependency graph left the model inconsistent
    channels_after = _channels(model, ignored)
    return model.eval(), {
        "channels_before": channels_before, "channels_after": channels_after,
        "channel_ratio_removed": round(1 - channels_after / channels_before, 4),
        "history": history}


def _prunable_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, PRUNABLE)]


def _weight_scores(layers, importance: str) -> list[torch.Tensor]:
    """Per-weight importance; weights already pruned score -1 so they stay pruned. l1 and l2
    rank single weights identically (|w|); taylor is |w * dL/dw| (first order)."""
    scores = []
    for layer in layers:
        w = layer.weight.detach()
        if importance == "taylor":
            grad = (layer.weight_orig.grad if hasattr(layer, "weight_orig")
                    else layer.weight.grad)
            score = (w * grad).abs() if grad is not None else torch.zeros_like(w)
        else:
            score = w.abs()
        mask = getattr(layer, "weight_mask", None)
        if mask is not None:
            score = torch.where(mask.bool(), score, torch.full_like(score, -1.0))
        scores.append(score)
    return scores


def _masks(scores: list[torch.Tensor], sparsity: float, scope: str) -> list[torch.Tensor]:
    """Keep the highest-scoring weights: per layer (scope layer, like l1_unstructured) or over
    all layers at once (scope global, like global_unstructured)."""
    def keep_top(flat: torch.Tensor, prune: int) -> torch.Tensor:
        mask = torch.ones_like(flat)
        if prune > 0:
            mask[torch.topk(flat, prune, largest=False).indices] = 0
        return mask

    if scope == "layer":
        return [keep_top(s.flatten(), round(sparsity * s.numel())).view_as(s) for s in scores]
    flat = torch.cat([s.flatten() for s in scores])
    mask = keep_top(flat, round(sparsity * flat.numel()))
    out, start = [], 0
    for s in scores:
        out.append(mask[start:start + s.numel()].view_as(s))
        start += s.numel()
    return out


def _prune_unstructured(model, step, ctx, data: _Data) -> tuple[nn.Module, dict]:
    from torch.nn.utils import prune

    from harness.methods.model_stats import weight_sparsity

    layers = _prunable_layers(model)
    history = []
    for k in range(1, step.steps + 1):
        target = step.sparsity * k / step.steps
        if step.importance == "taylor":
            data.accumulate_gradients(model)
        masks = _masks(_weight_scores(layers, step.importance), target, step.scope)
        model.zero_grad(set_to_none=True)
        for layer, mask in zip(layers, masks):
            # Combined with any earlier mask; the mask stays applied while fine-tuning.
            prune.custom_from_mask(layer, "weight", mask)
        entry = {"step": k, "target_sparsity": round(target, 6),
                 "weight_sparsity": round(weight_sparsity(model), 6),
                 "val_top1_before_finetune": data.val_top1(model)}
        fine = data.fine_tune(model, label=f"prune fine-tune (step {k}/{step.steps})")
        if fine is not None:
            entry |= {"val_top1_after_finetune": data.val_top1(model), "finetune": fine}
        history.append(entry)
    for layer in layers:
        prune.remove(layer, "weight")  # zeros become part of the plain weight tensor
    from harness.models.traits import with_traits
    with_traits(model, sparsity=round(weight_sparsity(model), 6))
    return model.eval(), {
        "weight_sparsity": round(weight_sparsity(model), 6), "history": history,
        "note": "same parameter count and no speedup on a dense runtime; the gain is the "
                "compressed artifact size (model_stats.compressed_size_bytes)"}

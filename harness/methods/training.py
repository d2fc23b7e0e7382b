"""Short supervised training shared by the methods that train (QAT, pruning fine-tune,
distillation, NAS): seeded, bounded in threads, and loud when the loss diverges."""

from __future__ import annotations

import math
import time
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from harness.methods.context import MethodError

VALIDATION_FRACTION = 0.2
VALIDATION_SEED = 7


def train_split(dataset, validation: bool = False):
    """(x, y) to train on, and with validation=True also a held-out (x, y) carved from the
    train split: search and selection never look at the test split accuracy is reported on."""
    if dataset.train_x is None or dataset.train_y is None:
        raise MethodError(f"dataset '{dataset.name}' has no labelled train split")
    x, y = dataset.train_x, dataset.train_y
    if not validation:
        return (x, y), None
    order = np.random.RandomState(VALIDATION_SEED).permutation(len(y))
    cut = int(len(y) * VALIDATION_FRACTION)
    held, kept = order[:cut], order[cut:]
    return (x[kept], y[kept]), (x[held], y[held])


@contextmanager
def torch_threads(threads: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def make_optimizer(params, spec):
    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=0.9, weight_decay=1e-4)
    return torch.optim.AdamW(params, lr=spec.lr, weight_decay=1e-4)


def distillation_loss(student_logits, teacher_logits, labels, alpha: float,
                      temperature: float):
    """alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y) (Hinton et al.;
    T^2 keeps the soft term's gradients on the scale of the hard term's)."""
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=1),
                    F.log_softmax(teacher_logits / temperature, dim=1),
                    reduction="batchmean", log_target=True) * temperature ** 2
    hard = F.cross_entropy(student_logits, labels)
    return alpha * soft + (1 - alpha) * hard


def train(module: torch.nn.Module, data, spec, *, teacher: torch.nn.Module | None = None,
          alpha: float = 0.0, temperature: float = 1.0, threads: int = 2,
          label: str = "training") -> dict:
    """Train `module` in place for spec.epochs on data=(x, y); with a teacher, on the
    distillation loss. Raises MethodError on a non-finite loss."""
    x, y = (torch.from_numpy(np.ascontiguousarray(a)) for a in data)
    torch.manual_seed(spec.seed)
    gen = torch.Generator().manual_seed(spec.seed)
    started = time.perf_counter()
    losses = []
    with torch_threads(threads):
        opt = make_optimizer([p for p in module.parameters() if p.requires_grad], spec)
        if teacher is not None:
            teacher.eval()
        module.train()
        for epoch in range(spec.epochs):
            order = torch.randperm(len(x), generator=gen)
            total, batches = 0.0, 0
            for i in range(0, len(x), spec.batch_size):
                idx = order[i:i + spec.batch_size]
                logits = module(x[idx])
                if teacher is not None:
                    with torch.no_grad():
                        target = teacher(x[idx])
                    loss = distillation_loss(logits, target, y[idx], alpha, temperature)
                else:
                    loss = F.cross_entropy(logits, y[idx])
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise MethodError(f"{label} diverged: loss is {value} at epoch {epoch + 1}, "
                                      f"batch {i // spec.batch_size + 1} (lr={spec.lr}, "
                                      f"optimizer={spec.optimizer}); lower the learning rate")
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += value
                batches += 1
            losses.append(round(total / max(batches, 1), 5))
        if spec.epochs:
            refresh_batchnorm(module, x)
        module.eval()
    return {"epochs": spec.epochs, "final_loss": losses[-1] if losses else None,
            "loss_per_epoch": losses, "seconds": round(time.perf_counter() - started, 2)}


BN_REFRESH_SAMPLES = 512


@torch.no_grad()
def refresh_batchnorm(module: torch.nn.Module, x: torch.Tensor, batch: int = 64) -> None:
    """Re-estimate BatchNorm statistics for the final weights (cumulative average over up
    to BN_REFRESH_SAMPLES training inputs). After a short run the running averages still
    mix in the early weights' statistics, and eval-mode accuracy lags far behind the loss
    (measured: 5 epochs, loss 0.48, val top-1 0.43 before the refresh)."""
    bns = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
           and m.track_running_stats]
    if not bns:
        return
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    module.train()
    for i in range(0, min(len(x), BN_REFRESH_SAMPLES), batch):
        module(x[i:i + batch])
    for bn, momentum in zip(bns, momenta):
        bn.momentum = momentum


@torch.no_grad()
def top1(module: torch.nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 256,
         threads: int = 2) -> float:
    module.eval()
    correct = 0
    with torch_threads(threads):
        for i in range(0, len(x), batch):
            pred = module(torch.from_numpy(np.ascontiguousarray(x[i:i + batch]))).argmax(1)
            correct += int((pred.numpy() == y[i:i + batch]).sum())
    return correct / len(y)

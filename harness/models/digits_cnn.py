"""The built-in `digits_cnn`: a small CNN trained deterministically on the digits data.

The trained weights are cached under the cache folder, keyed by a hash of this file's source,
the training recipe and the torch version, so a change to any of them retrains.
"""

from __future__ import annotations

import fcntl
import hashlib
import inspect
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

RECIPE = {"epochs": 10, "batch": 64, "lr": 2e-3, "weight_decay": 1e-4, "seed": 0, "threads": 2}


class DigitsCNN(nn.Module):
    """About 40 M multiply-adds at 1x32x32: about a millisecond per image on one core."""

    def __init__(self, width: int = 32, classes: int = 10):
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *block(1, width), *block(width, 2 * width), nn.MaxPool2d(2),
            *block(2 * width, 4 * width), nn.MaxPool2d(2), *block(4 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(4 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


NAME = "digits_cnn"
WIDTH = 32
INPUT_SHAPE = (1, 32, 32)


def build() -> DigitsCNN:
    return DigitsCNN(width=WIDTH)


def _recipe_key(name: str) -> str:
    payload = json.dumps({"name": name, "recipe": RECIPE, "torch": torch.__version__,
                          "code": inspect.getsource(inspect.getmodule(DigitsCNN)),
                          "data": inspect.getsource(_data_module())}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _data_module():
    import harness.data.digits as digits
    return digits


def _train(model: nn.Module) -> dict:
    from harness.data.digits import load_digits_dataset

    data = load_digits_dataset()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(RECIPE["threads"])  # summation order depends on the thread count
    try:
        x = torch.from_numpy(data.train_x)
        y = torch.from_numpy(data.train_y)
        opt = torch.optim.AdamW(model.parameters(), lr=RECIPE["lr"],
                                weight_decay=RECIPE["weight_decay"])
        steps = RECIPE["epochs"] * ((len(x) + RECIPE["batch"] - 1) // RECIPE["batch"])
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=RECIPE["lr"], total_steps=steps)
        # the only randomness of training is the batch order, from the recipe's seed (no
        # dropout, no random augmentation)
        gen = torch.Generator().manual_seed(RECIPE["seed"])
        started = time.perf_counter()
        model.train()
        for _ in range(RECIPE["epochs"]):
            order = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), RECIPE["batch"]):
                idx = order[i:i + RECIPE["batch"]]
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        model.eval()
        with torch.no_grad():
            pred = model(torch.from_numpy(data.test_x)).argmax(1).numpy()
        return {"train_seconds": round(time.perf_counter() - started, 2),
                "test_top1": float(np.mean(pred == data.test_y)),
                "test_samples": int(len(data.test_y)), "recipe": RECIPE}
    finally:
        torch.set_num_threads(previous_threads)


def initial_model() -> DigitsCNN:
    """The untrained model the recipe starts from: its initial weights come from the
    recipe's seed (they came from whatever state the process's RNG was in, so two caches
    trained different models: top-1 0.9917 in one, 0.9944 in another). The caller's RNG
    state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RECIPE["seed"])
        return build()


def load_trained(cache_dir: Path) -> tuple[nn.Module, dict]:
    model = initial_model()
    folder = Path(cache_dir) / "models"
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{NAME}-{_recipe_key(NAME)}"
    weights, meta = stem.with_suffix(".pt"), stem.with_suffix(".json")
    # Several build workers may ask at once: one trains, the others wait and reuse.
    with open(stem.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if weights.is_file() and meta.is_file():
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
            info = json.loads(meta.read_text())
        else:
            info = _train(model)
            torch.save(model.state_dict(), weights.with_suffix(".tmp"))
            weights.with_suffix(".tmp").replace(weights)
            meta.write_text(json.dumps(info, indent=2))
    model.eval()
    return model, {"source": f"builtin:{NAME}", "weights": "trained", **info}


def load_builtin(name: str, cache_dir: Path) -> tuple[nn.Module, tuple[int, ...], dict]:
    """The trained builtin (tests and benchmarks call this directly)."""
    if name != NAME:
        raise ValueError(f"unknown builtin model {name!r} (allowed: {NAME})")
    model, info = load_trained(cache_dir)
    return model, INPUT_SHAPE, info

"""Latency-aware neural architecture search over a small CNN family.

Each trial samples (width, depth, kernel size), trains the candidate briefly on the train
split, scores top-1 on a held-out part of it (never the test split results are reported
on), and takes its latency from a measurement on the target device's agent
(harness.methods.nas_latency). optuna's multi-objective TPE sampler proposes candidates;
the Pareto set (maximise accuracy, minimise latency) is stored once per search config and
every `NAME-pK` variant picks its member from it (p1 = fastest), so all of them come from
one search."""

from __future__ import annotations

import fcntl
import hashlib
import json
import time
from pathlib import Path

import torch
from torch import nn

from harness.methods.context import BuildContext, MethodError, MethodOutput
from harness.methods.training import top1, train, train_split

SEARCH_LAYOUT = 1   # bump when the family or the search procedure changes


class NasCandidate(nn.Module):
    """Two stages of `depth` conv-bn-relu blocks (width w, then 2w) with `kernel` sized
    filters, a 2x2 max-pool after each stage, global average pooling and a linear head."""

    def __init__(self, in_channels: int, classes: int, width: int, depth: int, kernel: int):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for cout in (width, 2 * width):
            for _ in range(depth):
                layers += [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
                           nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
                cin = cout
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _search_key(step, ctx: BuildContext, classes: int, where: str) -> str:
    config = step.model_dump(mode="json", exclude={"name", "member", "pareto_size"})
    blob = json.dumps({"config": config, "dataset": ctx.dataset.name, "classes": classes,
                       "input_shape": list(ctx.input_shape), "measured_on": where,
                       "layout": SEARCH_LAYOUT, "torch": torch.__version__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _pareto(trials: list[dict]) -> list[dict]:
    """Candidates no other candidate beats on both objectives, fastest first; one per
    architecture (optuna may propose an architecture twice)."""
    front = []
    for t in trials:
        dominated = any(o["latency_ms"] <= t["latency_ms"] and o["val_top1"] >= t["val_top1"]
                        and (o["latency_ms"] < t["latency_ms"] or o["val_top1"] > t["val_top1"])
                        for o in trials)
        if not dominated and all(f["arch"] != t["arch"] for f in front):
            front.append(t)
    return sorted(front, key=lambda t: t["latency_ms"])


def _run_search(step, ctx: BuildContext, in_channels: int, classes: int, service,
                folder: Path) -> dict:
    import optuna

    (train_x, train_y), (val_x, val_y) = train_split(ctx.dataset, validation=True)
    example = torch.from_numpy(ctx.dataset.test_x[:2])
    trained: dict[str, dict] = {}   # architecture -> result: a repeat proposal costs nothing
    trials: list[dict] = []

    def objective(trial: "optuna.Trial") -> tuple[float, float]:
        arch = {"width": trial.suggest_categorical("width", step.space.widths),
                "depth": trial.suggest_categorical("depth", step.space.depths),
                "kernel": trial.suggest_categorical("kernel", step.space.kernel_sizes)}
        tag = f"w{arch['width']}-d{arch['depth']}-k{arch['kernel']}"
        if tag not in trained:
            torch.manual_seed(step.seed)
            model = NasCandidate(in_channels, classes, **arch)
            fit = train(model, (train_x, train_y), step.train, threads=ctx.threads,
                        label=f"NAS candidate {tag}")
            accuracy = top1(model, val_x, val_y, threads=ctx.threads)
            latency = service.latency(arch, model, example)
            torch.save(model.state_dict(), folder / f"{tag}.pt")
            trained[tag] = {"arch": arch, "tag": tag, "val_top1": round(accuracy, 5),
                            "latency_ms": latency["p50_ms"], "latency": latency,
                            "params": sum(p.numel() for p in model.parameters()),
                            "train_seconds": fit["seconds"], "final_loss": fit["final_loss"]}
        trials.append(trained[tag] | {"trial": trial.number})
        return trained[tag]["val_top1"], trained[tag]["latency_ms"]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=step.seed,
                                         n_startup_trials=max(2, min(6, step.trials // 2)))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    started = time.perf_counter()
    study.optimize(objective, n_trials=step.trials)
    unique = list(trained.values())
    return {"trials": len(trials), "architectures": len(unique), "candidates": unique,
            "pareto": _pareto(unique), "search_seconds": round(time.perf_counter() - started, 1),
            "device": step.device, "format": step.format, "measured_on": service.where(),
            "latencies_measured": service.measured, "latencies_cached": service.cached,
            "sampler": "optuna TPESampler (multi-objective)"}


def search(step, ctx: BuildContext, in_channels: int, classes: int) -> tuple[dict, Path]:
    """The search's result, run once per config and device host (file-locked: the Pareto
    members of one search are built by concurrent tasks)."""
    from harness.methods.nas_latency import LatencyService

    # the latency_service seam: a factory (a sweep on a cluster passes one that measures
    # on an agent of the device); this host's worker otherwise
    factory = ctx.latency_service or LatencyService
    service = factory(step.format, step.device, ctx.cache_dir, ctx.dataset.test_x[:32])
    folder = Path(ctx.cache_dir) / "nas" / _search_key(step, ctx, classes, service.where())
    folder.mkdir(parents=True, exist_ok=True)
    result_file = folder / "search.json"
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if result_file.is_file():
            return json.loads(result_file.read_text()) | {"reused": True}, folder
        result = _run_search(step, ctx, in_channels, classes, service, folder)
        result_file.with_suffix(".tmp").write_text(json.dumps(result, indent=2))
        result_file.with_suffix(".tmp").replace(result_file)
    return result | {"reused": False}, folder


def apply_nas(module: torch.nn.Module, step, ctx: BuildContext) -> MethodOutput:
    if len(ctx.input_shape) != 3:
        raise MethodError(f"nas searches 2-D CNNs: input_shape must be [C, H, W], "
                          f"got {list(ctx.input_shape)}")
    with torch.no_grad():
        classes = int(module.eval()(torch.from_numpy(ctx.dataset.test_x[:1])).shape[-1])
    result, folder = search(step, ctx, ctx.input_shape[0], classes)
    member = step.member or 1
    pareto = result["pareto"]
    if member > len(pareto):
        raise MethodError(f"the search found {len(pareto)} Pareto candidate(s); "
                          f"{step.name}-p{member} does not exist (lower pareto_size or "
                          f"widen the search space / raise trials)")
    chosen = pareto[member - 1]
    model = NasCandidate(ctx.input_shape[0], classes, **chosen["arch"])
    model.load_state_dict(torch.load(folder / f"{chosen['tag']}.pt", weights_only=True))
    report = {"member": member, "arch": chosen["arch"], "val_top1": chosen["val_top1"],
              "search_latency_ms": chosen["latency_ms"], "pareto": pareto,
              **{k: result[k] for k in ("trials", "architectures", "search_seconds", "device",
                                        "format", "measured_on", "latencies_measured",
                                        "latencies_cached", "sampler", "reused")}}
    return MethodOutput(model.eval(), report)

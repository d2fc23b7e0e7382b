"""Figures for the prune and distill methods on the digits CNN.

prune: 30% channel pruning (l1, global and layer scope) with fine-tuning; top-1 on the
held-out validation part of the train split (which the built-in model's own training saw, so
the unpruned figure there is optimistic) and on the test split (never trained on); params and
MACs; then the unpruned and pruned models exported with the harness's ONNX exporter and timed
with ONNX Runtime, one thread, batch 1, alternating rounds in this one process.

distill: teacher vs distilled student vs the same student trained alone, at given widths.

    .venv/bin/python benchmarks/prune_distill_check.py [--cache results/cache]
        [--finetune-epochs 3] [--finetune-lr 1e-3] [--rounds 5] [--runs 300]
        [--widths 0.25 0.5] [--distill-epochs 10] [--skip-prune] [--skip-distill]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def ort_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_alternating(sessions: dict, x: np.ndarray, rounds: int, runs: int) -> dict:
    samples: dict[str, list[float]] = {name: [] for name in sessions}
    medians: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, session in sessions.items():
            feed = {session.get_inputs()[0].name: x}
            for _ in range(20):
                session.run(None, feed)
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                session.run(None, feed)
                times.append(time.perf_counter() - started)
            samples[name] += times
            medians[name].append(statistics.median(times))
    return {name: {"p50_ms": round(statistics.median(samples[name]) * 1e3, 4),
                   "round_medians_ms": [round(m * 1e3, 4) for m in medians[name]]}
            for name in sessions}


def test_top1(module, data) -> float:
    from harness.methods.training import top1
    return round(top1(module, data.test_x, data.test_y), 5)


def check_prune(args, model, data, ctx) -> dict:
    from harness.formats import FORMATS
    from harness.methods.prune import apply_prune
    from harness.matrix.schema import PruneMethod, TrainSpec

    finetune = TrainSpec(epochs=args.finetune_epochs, lr=args.finetune_lr)
    results = {"unpruned": {"test_top1": test_top1(model, data)}}
    pruned = {}
    for scope in ("global", "layer"):
        step = PruneMethod(name=f"ch30-{scope}", kind="prune", structure="channel",
                           sparsity=0.3, scope=scope, importance="l1", finetune=finetune)
        out = apply_prune(model, step, ctx)
        r = out.report
        pruned[scope] = out.module
        results[f"channel30-{scope}"] = {
            "val_top1_unpruned": r["val_top1_unpruned"],
            "val_top1_before_finetune": r["history"][-1]["val_top1_before_finetune"],
            "val_top1_after_finetune": r["val_top1"],
            "test_top1": test_top1(out.module, data),
            "params_ratio": r["params_ratio"], "macs_ratio": r["macs_ratio"],
            "channel_ratio_removed": r["channel_ratio_removed"],
            "finetune_loss": r["history"][-1].get("finetune", {}).get("loss_per_epoch")}
        print(scope, json.dumps(results[f"channel30-{scope}"]), flush=True)
    x = data.test_x[:2]
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {}
        for name, module in [("unpruned", model)] + [(f"channel30-{s}", m)
                                                     for s, m in pruned.items()]:
            path = Path(tmp) / f"{name}.onnx"
            FORMATS["onnx"].export(module.eval(), torch.from_numpy(x), path)
            sessions[name] = ort_session(path)
        timing = time_alternating(sessions, data.test_x[:1], args.rounds, args.runs)
    base = timing["unpruned"]["p50_ms"]
    for name, t in timing.items():
        results[name]["onnxruntime_1thread_b1"] = t | {
            "speedup_p50": round(base / t["p50_ms"], 3)}
    return results


def check_distill(args, model, data, ctx) -> dict:
    from harness.methods.distill import apply_distill
    from harness.matrix.schema import DistillMethod, StudentSpec, TrainSpec

    results = {}
    for width in args.widths:
        step = DistillMethod(name="kd", kind="distill", student=StudentSpec(width=width),
                             train=TrainSpec(epochs=args.distill_epochs, lr=2e-3))
        out = apply_distill(model, step, ctx)
        r = out.report
        keys = ("teacher_val_top1", "student_distilled_val_top1", "student_alone_val_top1",
                "distillation_gain", "teacher_params", "student_params", "teacher_macs",
                "student_macs")
        results[f"width{width}"] = {k: r[k] for k in keys} | {
            "student_distilled_test_top1": test_top1(out.module, data),
            "distilled_final_loss": r["training_distilled"]["final_loss"],
            "alone_final_loss": r["training_alone"]["final_loss"],
            "seconds": r["training_distilled"]["seconds"] + r["training_alone"]["seconds"]}
        print(f"width {width}", json.dumps(results[f"width{width}"]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", default="results/cache")
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--finetune-lr", type=float, default=1e-3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--widths", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--distill-epochs", type=int, default=10)
    parser.add_argument("--skip-prune", action="store_true")
    parser.add_argument("--skip-distill", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()

    from harness.data.digits import load_digits_dataset
    from harness.methods.context import BuildContext
    from harness.models.digits_cnn import load_builtin

    torch.set_num_threads(2)
    model, shape, _ = load_builtin("digits_cnn", Path(args.cache))
    data = load_digits_dataset()
    ctx = BuildContext(dataset=data, cache_dir=Path(args.cache), input_shape=shape, threads=2)
    out = {}
    if not args.skip_prune:
        out["prune"] = check_prune(args, model, data, ctx)
    if not args.skip_distill:
        out["distill"] = check_distill(args, model, data, ctx)
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)


if __name__ == "__main__":
    main()

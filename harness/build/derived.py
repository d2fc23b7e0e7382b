"""The model-level steps of a chain (prune, distill, qat, cast, nas): a torch model in, a
torch model out, built once per (weights, steps, dataset, method code) and reused by every
format of the variant, since training is the slow part of a build."""

from __future__ import annotations

import json
from pathlib import Path

from harness.build.keys import BUILD_LAYOUT_VERSION, code_digest, content_key, step_config


def method_modules(steps) -> list[str]:
    """The modules of the chain's model-level method functions."""
    from harness.methods import METHODS

    return sorted({METHODS[s.kind].function.partition(":")[0] for s in steps
                   if METHODS[s.kind].level == "model" and METHODS[s.kind].function})


def apply_model_steps(module, steps, ctx):
    """Run the chain's model-level steps in order: (module, reports keyed by step name)."""
    from harness.methods import METHODS

    report: dict = {}
    for step in steps:
        entry = METHODS[step.kind]
        if entry.level == "model":
            output = entry.apply()(module, step, ctx)
            module = output.module
            if output.report:
                report[step.name] = {"kind": step.kind} | output.report
    return module, report


def derived_model(loaded, steps, ctx):
    """The model-level steps' result, cached. The cache holds pickled modules (pruned models
    no longer fit their class's constructor); only this harness writes and reads it."""
    import fcntl

    import torch

    from harness.methods import METHODS

    model_steps = [s for s in steps if METHODS[s.kind].level == "model"]
    if all(METHODS[s.kind].identity for s in model_steps):
        return apply_model_steps(loaded.module, model_steps, ctx)
    key = content_key({"weights": loaded.weights_digest,
                       "steps": [step_config(s) for s in model_steps],
                       "dataset": ctx.dataset.name, "input_shape": list(ctx.input_shape),
                       "torch": torch.__version__, "code": code_digest(method_modules(steps)),
                       "layout": BUILD_LAYOUT_VERSION})
    folder = Path(ctx.cache_dir) / "derived"
    folder.mkdir(parents=True, exist_ok=True)
    path, meta = folder / f"{key}.pt", folder / f"{key}.json"
    graph_path = folder / f"{key}.pt2"  # exported programs: harness/build/exported_graphs.py
    with open(folder / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = _load(path, graph_path, meta)
        if cached is not None:
            return cached[0], renamed(cached[1], model_steps)
        module, report = apply_model_steps(loaded.module, model_steps, ctx)
        _save(module, report, path, graph_path, meta, ctx)
    return module, report


def renamed(report: dict, steps) -> dict:
    """A cached report under this chain's step names. Names are not in the cache key (two
    matrices may name the same steps differently), so an entry made by another chain is
    keyed by that chain's names: each entry goes, in order, to the next step of its kind."""
    named, position = {}, 0
    for old_name, entry in report.items():
        for index in range(position, len(steps)):
            if steps[index].kind == entry.get("kind"):
                named[steps[index].name] = entry
                position = index + 1
                break
        else:
            named[old_name] = entry  # no step of its kind left: keep it as it was
    return named


def _load(path: Path, graph_path: Path, meta: Path):
    import torch

    from harness.build.exported_graphs import load_graph

    if not meta.is_file():
        return None
    try:
        if path.is_file():
            module = torch.load(path, map_location="cpu", weights_only=False).eval()
        elif graph_path.is_file():
            module = load_graph(graph_path)
        else:
            return None
        return module, json.loads(meta.read_text())
    except Exception:  # noqa: BLE001 - a corrupt entry is rebuilt
        return None


def _save(module, report: dict, path: Path, graph_path: Path, meta: Path, ctx) -> None:
    import torch

    from harness.build.exported_graphs import is_graph, save_graph

    try:
        torch.save(module, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
    except Exception:  # noqa: BLE001 - not picklable: an exported program, if it exports
        path.with_suffix(".tmp").unlink(missing_ok=True)
        if not is_graph(module):
            return  # rebuilt each time
        try:
            save_graph(module, graph_path, ctx.dataset.calib_x[:2])
        except Exception:  # noqa: BLE001 - neither form: rebuilt each time
            return
    meta.write_text(json.dumps(report))

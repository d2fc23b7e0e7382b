"""Build node: variant = source model + method chain + format -> artifact, content-addressed.

The variant key hashes everything that determines the artifact: the model's source and
weights digest, the input shape and dataset, every step's config, the format's options and
the versions of its toolchain. A cached variant whose artifact still matches its recorded
hash is reused; a missing or corrupt one is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from agents.artifacts import (artifact_complete, artifact_digest, artifact_files, artifact_size,
                             sha256_file)

from harness.spec import ModelSpec

BUILD_LAYOUT_VERSION = 2  # bump when this module changes what it writes
BUILD_THREADS = 2


@dataclass(frozen=True)
class VariantRequest:
    model: ModelSpec
    method: str
    steps: tuple       # flattened StepSpec configs
    format: str
    base_dir: str      # the matrix's folder: relative paths resolve from there
    cache_dir: str
    # measures NAS candidates on a device agent (harness.methods.nas); None: on this host
    latency_service: object | None = None


def _step_config(step) -> dict:
    return step.model_dump(mode="json", exclude={"name"})


def variant_key(request: VariantRequest, weights_digest: str, toolchain: dict,
                format_options: dict) -> str:
    payload = {
        "model": {"source": request.model.source, "weights_digest": weights_digest,
                  "input_shape": request.model.input_shape, "dataset": request.model.dataset},
        "steps": [_step_config(s) for s in request.steps],
        "format": {"name": request.format, "options": format_options},
        "toolchain": toolchain,
        "layout": BUILD_LAYOUT_VERSION,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _eval_pack(loaded, dataset, cache: Path) -> tuple[Path, dict]:
    """Test inputs, labels and the fp32 source's outputs: what an agent needs for accuracy
    and fidelity, with no model code. One per (model weights, dataset)."""
    key = hashlib.sha256(f"{loaded.weights_digest}:{dataset.name}:"
                         f"{hashlib.sha256(dataset.test_x.tobytes()).hexdigest()}".encode()
                         ).hexdigest()[:20]
    path = cache / "eval" / f"{key}.npz"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with torch.no_grad():
            reference = torch.cat([loaded.module(torch.from_numpy(dataset.test_x[i:i + 32]))
                                   for i in range(0, len(dataset.test_x), 32)]).numpy()
        arrays = {"test_x": dataset.test_x, "reference": reference}
        if dataset.test_y is not None:
            arrays["test_y"] = dataset.test_y
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)
    reference = np.load(path)["reference"]
    ref_top1 = None
    if dataset.test_y is not None:
        ref_top1 = float(np.mean(reference.argmax(1) == dataset.test_y))
    return path, {"path": str(path), "sha256": sha256_file(path), "dataset": dataset.name,
                  "samples": int(len(dataset.test_x)), "labelled": dataset.labelled,
                  "reference_top1": ref_top1}


def _cached(folder: Path) -> dict | None:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text())
        artifact, companions = Path(data["artifact_path"]), data.get("companions", [])
        if (artifact_complete(artifact, companions)
                and artifact_digest(artifact, companions) == data["sha256"]):
            return data
    except (OSError, ValueError, KeyError):
        pass
    return None  # missing or corrupt: rebuild


def apply_model_steps(module: torch.nn.Module, steps, ctx) -> tuple[torch.nn.Module, dict]:
    """Run the chain's model-level steps in order; their reports, keyed by step name."""
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


def _method_code_digest(steps) -> str:
    """Source of the method functions a chain uses: a change to one retrains its variants."""
    import importlib
    import inspect

    from harness.methods import METHODS

    h = hashlib.sha256()
    for kind in sorted({s.kind for s in steps}):
        entry = METHODS[kind]
        if entry.function:
            module = importlib.import_module(entry.function.partition(":")[0])
            h.update(inspect.getsource(module).encode())
    return h.hexdigest()[:16]


def derived_model(loaded, steps, ctx) -> tuple[torch.nn.Module, dict]:
    """The model-level steps' result, built once per (weights, steps, dataset, method code)
    and reused by every format of the variant: training (QAT, fine-tuning, distillation,
    search) is the slow part of a build. The cache holds pickled modules (pruned models no
    longer fit their class's constructor); it is written and read only by this harness."""
    import fcntl

    model_steps = [s for s in steps if _is_model_level(s)]
    if all(s.kind == "baseline" for s in model_steps):
        return apply_model_steps(loaded.module, model_steps, ctx)
    blob = json.dumps({"weights": loaded.weights_digest, "steps": [_step_config(s)
                       for s in model_steps], "dataset": ctx.dataset.name,
                       "input_shape": list(ctx.input_shape), "torch": torch.__version__,
                       "code": _method_code_digest(model_steps), "layout": BUILD_LAYOUT_VERSION},
                      sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:20]
    folder = Path(ctx.cache_dir) / "derived"
    folder.mkdir(parents=True, exist_ok=True)
    path, meta = folder / f"{key}.pt", folder / f"{key}.json"
    with open(folder / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file() and meta.is_file():
            try:
                module = torch.load(path, map_location="cpu", weights_only=False)
                return module.eval(), json.loads(meta.read_text())
            except Exception:  # noqa: BLE001 - a corrupt entry is rebuilt
                pass
        module, report = apply_model_steps(loaded.module, model_steps, ctx)
        try:
            torch.save(module, path.with_suffix(".tmp"))
            path.with_suffix(".tmp").replace(path)
            meta.write_text(json.dumps(report))
        except Exception:  # noqa: BLE001 - a module that cannot be pickled is rebuilt each time
            path.with_suffix(".tmp").unlink(missing_ok=True)
    return module, report


def _is_model_level(step) -> bool:
    from harness.methods import METHODS
    return METHODS[step.kind].level == "model"


def build_variant(request: VariantRequest) -> dict:
    from harness.data import load_dataset
    from harness.models import load_model

    loaded = load_model(request.model, Path(request.base_dir), Path(request.cache_dir))
    dataset = load_dataset(request.model.dataset, loaded.input_shape)
    return build_loaded(request, loaded, dataset)


def build_loaded(request: VariantRequest, loaded, dataset) -> dict:
    """Build a variant of an already loaded model (harness.models.LoadedModel) on a dataset:
    the sweep's build node and the Python API (harness.api) both come through here."""
    from harness.formats import FORMATS
    from harness.methods import METHODS, precision_of
    from harness.methods.context import BuildContext
    from harness.methods.model_stats import compressed_size, model_stats
    from harness.parity import check_parity

    torch.set_num_threads(BUILD_THREADS)
    cache = Path(request.cache_dir)
    plugin = FORMATS[request.format]
    pack_path, pack = _eval_pack(loaded, dataset, cache)
    key = variant_key(request, loaded.weights_digest, plugin.toolchain(), plugin.options)
    folder = cache / "variants" / key
    hit = _cached(folder)
    if hit is not None:
        try:  # last used = now: `harness cache prune --older-than-days` goes by this
            os.utime(folder / "manifest.json")
        except OSError:
            pass  # a read-only cache is still a cache
        # Same content under this matrix's names (another matrix may have built it).
        return hit | {"model": request.model.name, "method": request.method, "cached": True,
                      "eval_pack": pack}

    started = time.perf_counter()
    module, method_report = derived_model(loaded, request.steps, BuildContext(
        dataset=dataset, cache_dir=cache, input_shape=tuple(loaded.input_shape),
        model_name=request.model.name, threads=BUILD_THREADS, base_dir=Path(request.base_dir),
        latency_service=request.latency_service))
    format_steps = [s for s in request.steps if METHODS[s.kind].level == "format"]
    precision = precision_of(request.steps)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=folder.parent))
    try:
        exported = work / f"exported{plugin.extension}"
        # Batch 2: an example of batch 1 would let the exporters specialise the batch dim.
        example = torch.from_numpy(dataset.test_x[:2])
        stats = model_stats(module.eval(), example[:1])
        plugin.export(module.eval(), example, exported)
        details: dict = {}
        artifact = exported
        for step in format_steps:
            artifact = work / f"quantized{plugin.extension}"
            details = plugin.quantize(step, exported, artifact, dataset.calib_x)
        final = work / f"model{plugin.extension}"
        companions = list(plugin.companions)
        for src, dst in zip(artifact_files(artifact, companions), artifact_files(final,
                                                                              companions)):
            src.replace(dst)
        keep = set(artifact_files(final, companions))
        for leftover in work.iterdir():
            if leftover not in keep:
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        parity = check_parity(str(final), plugin, precision, dataset.test_x,
                              np.load(pack_path)["reference"], threads=BUILD_THREADS)
        build_seconds = time.perf_counter() - started
        manifest = {
            "variant_id": key, "model": request.model.name, "method": request.method,
            "method_config": [_step_config(s) for s in request.steps],
            "format": request.format, "precision": precision, "runtime": plugin.runtime,
            "artifact_path": str(folder / final.name), "companions": companions,
            "sha256": artifact_digest(final, companions),
            "size_bytes": artifact_size(final, companions), "build_seconds": build_seconds,
            "model_stats": stats | {"compressed_size_bytes": compressed_size(
                artifact_files(final, companions))},
            "method_report": method_report,
            "parity": parity,
            "toolchain": plugin.toolchain() | {"format_options": plugin.options,
                                               "quantizer": details},
            "source": {"weights_digest": loaded.weights_digest, **loaded.info},
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
        if folder.exists():
            shutil.rmtree(folder)  # a corrupt earlier build
        work.replace(folder)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return manifest | {"cached": False, "eval_pack": pack}

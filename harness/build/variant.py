"""Build node: variant = source model + method chain + format -> artifact, content-addressed.

The variant key (harness.build.keys) hashes everything that determines the artifact,
including the source code of the harness modules that produce it. A cached variant whose
artifact still matches its recorded hash is reused; a missing or corrupt one is rebuilt.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from agents.artifacts import artifact_digest, artifact_files, artifact_size

from harness.build.data_digest import digest_of_dataset
from harness.build.derived import derived_model, method_modules
from harness.build.eval_pack import eval_pack
from harness.build.exports import export_once
from harness.build.keys import (BUILD_LAYOUT_VERSION, code_digest, code_modules, content_key,
                                step_config)
from harness.build.variant_folder import cached_manifest, touch
from harness.matrix.schema import ModelSpec

BUILD_THREADS = 2
BUILD_MODULES = ("harness.build.variant", "harness.build.derived")


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
    # the values of the model's named axes the matrix sweeps ([{}]: none) and its batch
    # sizes: the eval pack has test inputs per shape; formats that build for a range of
    # shapes (TensorRT's optimization profiles) take their bounds from these
    shapes: tuple = ({},)
    batch_sizes: tuple = (1,)


def artifact_modules(request: VariantRequest) -> list[str]:
    """The harness modules that turn this request into an artifact (their import closure
    is added by keys.code_digest): the source loader, the dataset, the chain's methods, the
    format and the build itself."""
    from harness.data import dataset_module
    from harness.formats import FORMATS
    from harness.models import source_module

    modules = [*BUILD_MODULES, type(FORMATS[request.format]).__module__,
               *method_modules(request.steps)]
    for module in (source_module(request.model.source), dataset_module(request.model.dataset)):
        if module:
            modules.append(module)
    return sorted(set(modules))


def profile(request: VariantRequest) -> dict:
    """(min, opt, max) of each named axis over what the matrix measures: the batch from 1
    to the largest batch size, other axes over their swept values (opt: the largest)."""
    ranges = {"batch": (1, max(request.batch_sizes), max(request.batch_sizes))}
    for axis in {a for shape in request.shapes for a in shape}:
        values = [shape[axis] for shape in request.shapes if axis in shape]
        ranges[axis] = (min(values), max(values), max(values))
    return ranges


def variant_key(request: VariantRequest, weights_digest: str, toolchain: dict,
                format_options: dict, source_code: str | None = None,
                data_digest: str | None = None, inputs: tuple = ()) -> str:
    """`source_code`: a digest of the user's own model code (a module: factory's file),
    which the weights digest cannot see (same weights, another forward()). `data_digest`:
    of the calibration data (a user's npz or image folder can change under the same
    name). The shape profile is part of the key only for formats that build for it."""
    return content_key(_key_payload(request, weights_digest, toolchain, format_options,
                                    source_code, data_digest, inputs)
                       | {"steps": [step_config(s) for s in request.steps]})


def export_key(request: VariantRequest, weights_digest: str, toolchain: dict,
               format_options: dict, source_code: str | None = None,
               data_digest: str | None = None, inputs: tuple = (),
               example: tuple = ()) -> str:
    """The key of the export a variant's format-level steps start from: the variant's key
    with only its model-level steps, and the example the exporter traces with."""
    import dataclasses

    from harness.methods import METHODS

    # what changes the exported model: the model-level steps that transform it (a
    # baseline's identity step exports the same model as a quantizer's empty chain)
    model_steps = tuple(s for s in request.steps if METHODS[s.kind].level == "model"
                        and not METHODS[s.kind].identity)
    request = dataclasses.replace(request, steps=model_steps)
    return content_key(_key_payload(request, weights_digest, toolchain, format_options,
                                    source_code, data_digest, inputs)
                       | {"model_steps": [step_config(s) for s in model_steps],
                          "example": [[list(t.shape), str(t.dtype)] for t in example],
                          "kind": "export"})


def _key_payload(request: VariantRequest, weights_digest: str, toolchain: dict,
                 format_options: dict, source_code: str | None, data_digest: str | None,
                 inputs: tuple) -> dict:
    from harness.formats import FORMATS

    plugin = FORMATS[request.format]
    return {
        # warnings=False: the Python API's specs are built with model_construct and hold
        # what the matrix schema has no field type for (its in-memory data as
        # "api-<digest>", named dims such as "seq"); the key needs only their JSON.
        "model": request.model.model_dump(
            mode="json", exclude={"name", "batch_sizes"}, warnings=False)
        | {"weights_digest": weights_digest, "source_code": source_code,
           "inputs": [s.to_json() for s in inputs], "data": data_digest},
        "format": {"name": request.format, "options": format_options,
                   "profile": profile(request) if plugin.uses_profile else None},
        "toolchain": toolchain,
        "code": code_digest(artifact_modules(request)),
        "layout": BUILD_LAYOUT_VERSION,
    }


def full_range_int8(steps) -> bool:
    """A step quantizes weights to the full int8 range (reduce_range resolved to false)."""
    return any(getattr(getattr(s, "scheme", None), "reduce_range", None) is False
               for s in steps)


def _resolved_here(request: VariantRequest, plugin) -> VariantRequest:
    """`reduce_range: auto` left for this host to decide (the Python API; a sweep resolves
    it for the agents of the variant's devices before the build)."""
    import dataclasses

    from agents.devices import int8_saturates
    from harness.build.reduce_range import resolve

    return dataclasses.replace(request, steps=resolve(request.steps, plugin, int8_saturates()))


def build_variant(request: VariantRequest) -> dict:
    """A matrix variant: found through the build index when built before from what has not
    changed (harness.build.build_index), else built (or found) from the loaded model."""
    from harness.build import build_index
    from harness.build.loaded_sources import loaded_source
    from harness.formats import FORMATS

    plugin = FORMATS[request.format]
    request = _resolved_here(request, plugin)
    fingerprint = None
    if build_index.indexed(request):
        fingerprint = build_index.fingerprint(request, plugin,
                                              code_digest(artifact_modules(request)),
                                              profile(request))
    if fingerprint is not None:
        found = build_index.find(request, fingerprint)
        if found is not None:
            return found
    loaded, dataset, digest = loaded_source(request.model, Path(request.base_dir),
                                            Path(request.cache_dir))
    built = build_loaded(request, loaded, dataset, digest)
    if fingerprint is not None:
        build_index.remember(request, fingerprint, built)
    return built


def build_loaded(request: VariantRequest, loaded, dataset, dataset_digest: str | None = None
                 ) -> dict:
    """Build a variant of an already loaded model (harness.models.LoadedModel) on a dataset:
    the sweep's build node and the Python API (harness.api) both come through here.
    `dataset_digest`: digest_of_dataset(dataset), where the caller has it already."""
    import torch  # here, not at the top: the coordinator imports this module for
    # VariantRequest, and torch's import (1.4 s) delayed the sweep's first build
    from harness.formats.export_spec import ExportSpec
    from harness.build.parity import check_parity
    from harness.formats import FORMATS
    from harness.methods import METHODS, precision_of
    from harness.methods.context import BuildContext
    from harness.methods.model_stats import compressed_size, file_stats, model_stats
    from harness.models.dims import example_tensors

    torch.set_num_threads(BUILD_THREADS)
    cache = Path(request.cache_dir)
    plugin = FORMATS[request.format]
    request = _resolved_here(request, plugin)
    shapes = [dict(s) for s in request.shapes] if request.shapes != ({},) else [dataset.shape]
    pack_path, pack = eval_pack(loaded, dataset, cache, loaded.task, shapes)
    key_parts = (loaded.weights_digest, plugin.toolchain(), plugin.options,
                 loaded.info.get("module_sha256"), dataset_digest or digest_of_dataset(dataset),
                 tuple(loaded.inputs))
    key = variant_key(request, *key_parts)
    folder = cache / "variants" / key
    hit = cached_manifest(folder)
    if hit is not None:
        touch(folder)
        # Same content under this matrix's names (another matrix may have built it).
        return hit | {"model": request.model.name, "method": request.method, "cached": True,
                      "eval_pack": pack}

    started = time.perf_counter()
    export = ExportSpec(inputs=tuple(loaded.inputs), profile=profile(request))
    format_steps = [s for s in request.steps if METHODS[s.kind].level == "format"]
    precision = precision_of(request.steps)
    first = dataset.at(shapes[0])
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=folder.parent))
    try:
        exported = work / f"exported{plugin.extension}"
        exported_from = None  # the cached export the format-level steps started from
        if loaded.file is not None:  # an ONNX file: no model-level steps (the plan says so)
            module, method_report = None, {}
            stats = file_stats(Path(loaded.file))
            plugin.convert_file(Path(loaded.file), exported, export)
        else:
            module, method_report = derived_model(loaded, request.steps, BuildContext(
                dataset=dataset, cache_dir=cache, input_shape=tuple(loaded.input_shape),
                model_name=request.model.name, threads=BUILD_THREADS,
                base_dir=Path(request.base_dir), latency_service=request.latency_service))
            example = example_tensors(loaded.inputs, first.test)
            stats = model_stats(module.eval(), tuple(t[:1] for t in example))
            exported_from = {"key": export_key(request, *key_parts, example=example)}
            exported_from["cached"] = export_once(plugin, module.eval(), example, exported,
                                                  export, exported_from["key"], cache)
        details: dict = {}
        artifact = exported
        for step in format_steps:
            artifact = work / f"quantized{plugin.extension}"
            details = plugin.quantize(step, exported, artifact, first.calib, export)
        final = work / f"model{plugin.extension}"
        companions = list(plugin.companions)
        for src, dst in zip(artifact_files(artifact, companions), artifact_files(final,
                                                                              companions)):
            src.replace(dst)
        keep = set(artifact_files(final, companions))
        for leftover in work.iterdir():
            if leftover not in keep:
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        parity = check_parity(str(final), plugin, precision, str(pack_path),
                              threads=BUILD_THREADS,
                              full_range_int8=full_range_int8(request.steps))
        build_seconds = time.perf_counter() - started
        manifest = {
            "variant_id": key, "model": request.model.name, "method": request.method,
            "method_config": [step_config(s) for s in request.steps],
            "format": request.format, "precision": precision, "runtime": plugin.runtime,
            "task": loaded.task, "inputs": [s.to_json() for s in loaded.inputs],
            "artifact_path": str(folder / final.name), "companions": companions,
            "sha256": artifact_digest(final, companions),
            "size_bytes": artifact_size(final, companions), "build_seconds": build_seconds,
            "model_stats": stats | {"compressed_size_bytes": compressed_size(
                artifact_files(final, companions))},
            "method_report": method_report,
            "export": exported_from,
            "parity": parity,
            "toolchain": plugin.toolchain() | {"format_options": plugin.options,
                                               "quantizer": details},
            "source": {"weights_digest": loaded.weights_digest, **loaded.info},
            "data": {"name": dataset.name, "split": dataset.split},
            "code_modules": code_modules(artifact_modules(request)),
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
        if folder.exists():
            shutil.rmtree(folder)  # a corrupt earlier build
        work.replace(folder)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return manifest | {"cached": False, "eval_pack": pack}

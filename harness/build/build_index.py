"""Where a rerun finds a variant it built before without loading the model again.

A cache hit needs the variant key, and the key needs what only a loaded model tells: its
weights digest, its inputs, its dataset's digest. Loading the models to learn them was most
of a warm rerun's build time (importing torch, torchvision, transformers and scikit-learn,
constructing resnet18, reading the digits: 15-20 s of a 50-variant sweep), all to find
artifacts that were already there.

The index maps a request's fingerprint to the key (and eval pack) its last build produced.
The fingerprint holds everything the loaded model's figures come from:

- the request: model spec, steps, format and its options and toolchain versions, shapes
  and batch sizes, the matrix folder and the cache;
- the size and modification time of every file or folder the spec names (an ONNX file, a
  transformers folder, a weights file, a dataset folder);
- the versions of the libraries models and datasets are built with (a seeded random init
  or a trained builtin differs across torch versions);
- the code digest of the modules that load, build and key the variant (keys.code_digest).

What sources keep under the cache (the builtin CNN's trained weights, torchvision models'
re-estimated BatchNorm statistics) is a function of that code, those versions and that
data, so it is not stat'ed: they are made again identically when deleted.

Sources whose weights could change with none of that changing are never indexed: a
`module:` factory (its file may import other code of the user's) and a transformers model
named by hub id (the hub cache can move to another revision). An entry is used only when
its variant still verifies (manifest and artifact hash: variant_folder.cached_manifest) and its
eval pack is still the file it recorded; otherwise the model is loaded as before."""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

INDEX_FOLDER = "index"
# the libraries a model's or a dataset's values come from
LIBRARIES = ("torch", "torchvision", "transformers", "scikit-learn", "numpy", "onnx")
NOT_INDEXED = {"module": "a module factory's file may import other code that changes",
               "hf": "a hub id's weights come from the hub cache, which can change revision"}


def _versions() -> dict:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def indexed(request) -> bool:
    """Whether this request's source can be found through the index (see NOT_INDEXED): a
    transformers folder under the matrix folder can, a hub id cannot."""
    scheme, _, ref = request.model.source.partition(":")
    if scheme == "hf":
        return (Path(request.base_dir) / ref).is_dir()
    return scheme not in NOT_INDEXED


def fingerprint(request, plugin, code: str, shape_profile: dict) -> str:
    """Everything the variant key's loaded-model parts come from (module docstring); `code`:
    the code digest of the modules that build the variant, `shape_profile`: the shape
    ranges it is built for (both as the variant key has them)."""
    from harness.build.keys import content_key, step_config
    from harness.build.loaded_sources import files_state

    base_dir, cache = Path(request.base_dir), Path(request.cache_dir)
    spec_json = request.model.model_dump(mode="json", exclude={"name"}, warnings=False)
    return content_key({
        "model": spec_json, "steps": [step_config(s) for s in request.steps],
        "format": {"name": request.format, "options": plugin.options,
                   "toolchain": plugin.toolchain(), "profile": shape_profile},
        "shapes": [dict(s) for s in request.shapes],
        "folders": [str(base_dir.resolve()), str(cache.resolve())],
        "files": files_state(spec_json, base_dir),
        "libraries": _versions(), "code": code,
    })


def _entry(cache: Path, key: str) -> Path:
    return cache / INDEX_FOLDER / f"{key}.json"


def find(request, key: str) -> dict | None:
    """The cached variant this fingerprint built last, with its eval pack: a build result
    as variant.build_loaded returns for a hit; None where there is none or it has changed."""
    from harness.build.variant_folder import cached_manifest, touch

    cache = Path(request.cache_dir)
    try:
        entry = json.loads(_entry(cache, key).read_text())
        folder = cache / "variants" / entry["variant"]
        pack = entry["eval_pack"]
        pack_state = os.stat(pack["path"])
        if [pack_state.st_size, pack_state.st_mtime_ns] != entry["eval_pack_state"]:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none yet, unreadable or gone: load the model
    hit = cached_manifest(folder)
    if hit is None:
        return None
    touch(folder)
    return hit | {"model": request.model.name, "method": request.method, "cached": True,
                  "eval_pack": pack}


def remember(request, key: str, built: dict) -> None:
    """Record what this fingerprint built (or found by loading the model)."""
    cache = Path(request.cache_dir)
    pack = built.get("eval_pack") or {}
    if not pack.get("path"):
        return  # nothing to find it by
    try:
        state = os.stat(pack["path"])
        path = _entry(cache, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"variant": built["variant_id"], "eval_pack": pack,
                                   "eval_pack_state": [state.st_size, state.st_mtime_ns]}))
        tmp.replace(path)
    except OSError:
        pass  # a read-only cache: the next run loads the model, as without an index


def drop_stale(cache_dir: str | Path) -> int:
    """Remove the entries whose variant is gone (after a prune): how many."""
    folder = Path(cache_dir) / INDEX_FOLDER
    dropped = 0
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            variant = json.loads(path.read_text())["variant"]
        except (OSError, ValueError, KeyError, TypeError):
            variant = None
        if variant is None or not (Path(cache_dir) / "variants" / variant).is_dir():
            path.unlink(missing_ok=True)
            dropped += 1
    return dropped

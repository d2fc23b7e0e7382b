"""The models a build process loaded last, with their datasets, kept for its next builds.

A sweep builds a model's variants one after another, in the same Ray worker process, and
most of them are cache hits that need the loaded model only for the variant key (its
weights digest, inputs and data digest). Loading resnet18 again for each (constructing it,
reading its BatchNorm statistics, drawing 160 synthetic images) cost ~1 s a variant.

An entry is reused only while what it was loaded from is unchanged: the model's spec, the
matrix folder and cache, and the size and modification time of every file or folder a
spec field names (an ONNX file, a transformers folder, a weights file, a dataset folder);
and only while the module's weights still hash to the digest taken at load (a method that
changed the module in place would otherwise leak into the next variant's build)."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

KEEP = 2            # a model and the one before it: builds are ordered model by model
MAX_FILES = 1000    # files stat'ed under one folder a spec names (a dataset of images)

_recent: OrderedDict = OrderedDict()


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _stat(path: Path) -> list:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    state = []
    for file in files[:MAX_FILES]:
        info = file.stat()
        state.append((str(file), info.st_size, info.st_mtime_ns))
    return state + [len(files)]


def files_state(spec_json: dict, base_dir: Path) -> list:
    """(path, size, mtime) of each file under every path a spec field names, relative to
    the matrix folder: "onnx:models/x.onnx" names models/x.onnx."""
    state = []
    for text in sorted(set(_strings(spec_json))):
        for candidate in {text, text.partition(":")[2]}:
            if not candidate:
                continue
            path = base_dir / candidate
            try:
                if path.exists():
                    state.append(_stat(path))
            except OSError:
                state.append([candidate, "unreadable"])
    return state


def _unchanged(loaded) -> bool:
    from harness.models import weights_digest

    return loaded.module is None or weights_digest(loaded.module) == loaded.weights_digest


def loaded_source(model, base_dir: Path, cache_dir: Path):
    """(LoadedModel, Dataset, data digest) for a matrix model, from the last builds when
    nothing they were loaded from has changed."""
    from harness.build.data_digest import digest_of_dataset
    from harness.data import load_dataset
    from harness.models import load_model

    spec_json = model.model_dump(mode="json", exclude={"batch_sizes"}, warnings=False)
    key = json.dumps([spec_json, str(Path(base_dir).resolve()),
                      str(Path(cache_dir).resolve()), files_state(spec_json, Path(base_dir))],
                     sort_keys=True, default=str)
    entry = _recent.get(key)
    if entry is not None and _unchanged(entry[0]):
        _recent.move_to_end(key)
        return entry
    _recent.pop(key, None)
    loaded = load_model(model, Path(base_dir), Path(cache_dir))
    dataset = load_dataset(model.dataset, loaded.inputs, Path(base_dir))
    entry = (loaded, dataset, digest_of_dataset(dataset))
    _recent[key] = entry
    while len(_recent) > KEEP:
        _recent.popitem(last=False)
    return entry


def forget() -> None:
    """Drop every kept model (tests; a process that needs the memory back)."""
    _recent.clear()

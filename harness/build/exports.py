"""One export per (model, model-level steps, format): the fp32 export that a format's own
quantizers start from (dynamic and static int8 of one model in one format used to export the
same torch model three times; a LiteRT conversion takes tens of seconds, an ONNX export of a
transformer as long). Exports are cached under `exports/KEY/` beside the variants, keyed like
a variant without its format-level steps; a build copies the export into its own folder, so
a quantizer can never change the cached file. A format whose artifact is specific to the
device it is built on (TensorRT) exports afresh each time."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path

from agents.artifacts import artifact_complete, artifact_digest

RECORD = "export.json"  # the file, its companions and digest, checked on every hit

EXPORTS = "exports"


def export_once(plugin, module, example: tuple, out: Path, spec, key: str,
                cache: Path) -> bool:
    """Export `module` to `out` (and its companion files) through the cache under its
    content key (harness.build.variant.export_key). Returns True on a hit."""
    companions = tuple(plugin.companions)
    if plugin.builds_on:
        plugin.export(module, example, out, spec)
        return False
    folder = cache / EXPORTS / key
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # builds on several nodes may share the cache
        hit = export_problem(folder) is None
        if hit:
            os.utime(folder / RECORD)  # last used: `harness cache prune` goes by this
        else:
            work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=folder.parent))
            try:
                plugin.export(module, example, work / out.name, spec)
                (work / RECORD).write_text(json.dumps({
                    "file": out.name, "companions": list(companions),
                    "sha256": artifact_digest(work / out.name, companions)}))
                shutil.rmtree(folder, ignore_errors=True)
                work.replace(folder)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        # every file the exporter wrote (an ONNX file's external data too)
        for file in folder.iterdir():
            if file.name != RECORD:
                shutil.copyfile(file, out.parent / file.name)
    return hit


def export_problem(folder: Path) -> str | None:
    """Why a cached export would not be reused (missing, incomplete, altered), or None."""
    try:
        record = json.loads((folder / RECORD).read_text())
        path, companions = folder / record["file"], tuple(record["companions"])
        if not artifact_complete(path, companions):
            return "files missing"
        if artifact_digest(path, companions) != record["sha256"]:
            return "sha256 mismatch"
    except (OSError, ValueError, KeyError, TypeError):
        return f"no readable {RECORD}"
    return None

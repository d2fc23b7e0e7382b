"""The artifact cache on disk: what is in it, how big it is, and pruning it.

Layout (written by harness/build.py and harness/models/builtin.py):

    CACHE/variants/<key>/            one built variant: manifest.json + model.<ext>
    CACHE/variants/<key>.<random>/   a build in progress, or one that died half-way
    CACHE/models/<name>-<recipe>.*   trained builtin models (.pt, .json, .lock)
    CACHE/eval/<key>.npz             eval packs: test inputs, labels, fp32 reference outputs
    CACHE/exports/<key>/             one model's export to a format, which its variants'
                                     quantizers start from (harness/build/exports.py)
    CACHE/index/<fingerprint>.json   which variant a request built last, so a rerun finds
                                     it without loading the model (harness/build/build_index.py)

A variant's `last_used` is its manifest's mtime: the build touches it on every cache hit.
A variant is `ok` when the build would reuse it (its artifact is where the manifest says,
inside the folder, with the recorded sha256); anything else is `corrupt` and would be
rebuilt (an export likewise). Pruning removes whole variant and export folders, never part
of one: a folder is first
renamed out of the way (atomic on one file system) and only then deleted, so a build never
sees a half-deleted variant. Pruning during a sweep that uses the same cache may remove a
variant a queued measurement still needs: prune between sweeps.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from agents.artifacts import artifact_complete, artifact_digest

from harness.build.exports import EXPORTS, RECORD, export_problem
from harness.errors import InputError

VARIANT_RE = re.compile(r"^[0-9a-f]{20}$")              # build.variant_key: sha256[:20]
TEMP_RE = re.compile(r"^[0-9a-f]{20}\.[A-Za-z0-9_]+$")  # tempfile.mkdtemp(prefix=key + ".")
TRASH_PREFIX = ".pruning-"                               # renamed, being deleted
TEMP_MIN_AGE_S = 3600.0  # a younger temp folder may be a build running right now
DAY_S = 86_400.0


def _cache_root(cache_dir: str | Path) -> Path:
    root = Path(cache_dir)
    if not root.is_dir():
        raise InputError("cache folder not found", file=str(root),
                         allowed="the folder given to `harness sweep --cache` "
                                 "(default results/cache)")
    return root


def _tree_bytes(path: Path) -> int:
    """Bytes of the files under path (or of path itself), without following links."""
    try:
        if not path.is_dir() or path.is_symlink():
            return path.lstat().st_size
    except OSError:
        return 0
    total = 0
    for folder, _, files in os.walk(path, onerror=lambda exc: None):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:  # removed while we walked
                pass
    return total


def _mtime(path: Path) -> float | None:
    try:
        return path.lstat().st_mtime
    except OSError:
        return None


def _stamp(mtime: float | None, now: float) -> dict:
    if mtime is None:
        return {"last_used": None, "age_days": None}
    return {"last_used": datetime.fromtimestamp(mtime, timezone.utc).isoformat(timespec="seconds"),
            "age_days": round(max(0.0, now - mtime) / DAY_S, 4)}


def _check_variant(folder: Path) -> tuple[dict, str | None]:
    """(manifest or {}, problem or None). The same test as build._cached, with a reason."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        return {}, "manifest.json is missing"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        return {}, f"manifest.json is unreadable ({type(exc).__name__})"
    if not isinstance(manifest, dict):
        return {}, "manifest.json is not an object"
    recorded, digest = manifest.get("artifact_path"), manifest.get("sha256")
    if not isinstance(recorded, str) or not isinstance(digest, str):
        return manifest, "manifest.json has no artifact_path/sha256"
    artifact = Path(recorded)
    if artifact.parent.resolve() != folder.resolve():
        return manifest, (f"artifact_path points outside this folder ({recorded}); "
                          "the cache was moved, so the build will not reuse it")
    companions = manifest.get("companions") or []
    if not artifact_complete(artifact, companions):
        return manifest, f"artifact {artifact.name} (or a companion file) is missing"
    try:
        if artifact_digest(artifact, companions) != digest:
            return manifest, f"artifact {artifact.name} does not match its recorded sha256"
    except OSError as exc:
        return manifest, f"artifact {artifact.name} is unreadable ({type(exc).__name__})"
    return manifest, None


def _variant_entry(folder: Path, now: float) -> dict:
    manifest, problem = _check_variant(folder)
    used = _mtime(folder / "manifest.json") or _mtime(folder)

    def text(key):
        value = manifest.get(key)
        return value if isinstance(value, str) else None

    return {"kind": "variant", "id": folder.name, "variant_id": folder.name,
            "model": text("model"), "method": text("method"), "format": text("format"),
            "precision": text("precision"), "size_bytes": _tree_bytes(folder),
            **_stamp(used, now), "status": "corrupt" if problem else "ok",
            "problem": problem, "path": str(folder)}


def _other_entry(kind: str, ident: str, paths: list[Path], now: float,
                 status: str = "ok", problem: str | None = None) -> dict:
    times = [t for t in (_mtime(p) for p in paths) if t is not None]
    return {"kind": kind, "id": ident, "variant_id": None, "model": None, "method": None,
            "format": None, "precision": None,
            "size_bytes": sum(_tree_bytes(p) for p in paths),
            **_stamp(max(times) if times else None, now), "status": status,
            "problem": problem,
            "path": str(paths[0] if len(paths) == 1 else paths[0].parent / f"{ident}.*")}


def _entries(root: Path, now: float) -> list[dict]:
    out: list[dict] = []
    variants = root / "variants"
    if variants.is_dir():
        for child in sorted(variants.iterdir()):
            if child.is_symlink() or not child.is_dir():
                continue  # not something the build writes: never touch it
            if VARIANT_RE.match(child.name):
                out.append(_variant_entry(child, now))
            elif TEMP_RE.match(child.name) or child.name.startswith(TRASH_PREFIX):
                out.append(_other_entry("temp", child.name, [child], now, status="leftover",
                                        problem="an unfinished build or prune"))
    exports = root / EXPORTS
    if exports.is_dir():
        for child in sorted(exports.iterdir()):
            if child.is_symlink() or not child.is_dir():
                continue  # the .lock files, or not the build's
            if VARIANT_RE.match(child.name):
                problem = export_problem(child)
                entry = _other_entry("export", child.name, [child], now,
                                     status="corrupt" if problem else "ok", problem=problem)
                # last used: the record, which every hit touches
                out.append(entry | _stamp(_mtime(child / RECORD) or _mtime(child), now))
            elif TEMP_RE.match(child.name) or child.name.startswith(TRASH_PREFIX):
                out.append(_other_entry("temp", child.name, [child], now, status="leftover",
                                        problem="an unfinished export or prune"))
    models = root / "models"
    if models.is_dir():
        groups: dict[str, list[Path]] = {}
        for child in sorted(models.iterdir()):
            if child.is_file() and not child.is_symlink():
                groups.setdefault(child.name.split(".", 1)[0], []).append(child)
        for stem, files in groups.items():
            out.append(_other_entry("model", stem, files, now))
    evals = root / "eval"
    if evals.is_dir():
        for child in sorted(evals.iterdir()):
            if child.is_file() and not child.is_symlink():
                out.append(_other_entry("eval-pack", child.name, [child], now))
    return out


def list_cache(cache_dir: str | Path) -> list[dict]:
    """One entry per variant folder (checked: ok or corrupt), per leftover build folder
    (kind 'temp'), per trained builtin model (kind 'model') and per eval pack
    (kind 'eval-pack'). Sizes in bytes; last_used in UTC ISO 8601, age_days beside it."""
    return _entries(_cache_root(cache_dir), time.time())


def cache_usage(cache_dir: str | Path) -> int:
    """Total bytes under the cache folder."""
    return _tree_bytes(_cache_root(cache_dir))


def _remove_folder(folder: Path) -> bool:
    """Rename out of the way (atomic), then delete: the variant disappears as a whole.
    False if it could not be moved (gone already, no permission): nothing was touched.
    A delete that fails after the move leaves a '.pruning-*' folder, which the next prune
    removes as a leftover."""
    trash = Path(tempfile.mkdtemp(prefix=TRASH_PREFIX, dir=folder.parent))
    try:
        os.rename(folder, trash / folder.name)
    except OSError:
        trash.rmdir()
        return False
    shutil.rmtree(trash, ignore_errors=True)
    return True


def prune_cache(cache_dir: str | Path, older_than_days: float | None = None,
                corrupt_only: bool = False, dry_run: bool = False) -> list[dict]:
    """Remove whole variant folders that were last used more than `older_than_days` ago
    and/or (with `corrupt_only`) that are corrupt; both given: old AND corrupt. Leftover
    build folders older than an hour go too. Returns the entries removed (with dry_run,
    the entries that would be). Trained models and eval packs are kept: they are small and
    rebuilt variants need them."""
    if older_than_days is None and not corrupt_only:
        raise InputError("say what to prune", field="prune",
                         allowed="--older-than-days N, --corrupt, or both")
    if older_than_days is not None and not (older_than_days >= 0):  # also refuses NaN
        raise InputError(f"must be a number >= 0, got {older_than_days}",
                         field="--older-than-days")
    root = _cache_root(cache_dir)
    now = time.time()
    chosen = []
    for entry in _entries(root, now):
        age = entry["age_days"]
        if entry["kind"] == "temp":
            if age is not None and age * DAY_S >= TEMP_MIN_AGE_S:
                chosen.append(entry)
            continue
        if entry["kind"] not in ("variant", "export"):
            continue
        if corrupt_only and entry["status"] != "corrupt":
            continue
        if older_than_days is not None and (age is None or age < older_than_days):
            continue
        chosen.append(entry)
    if dry_run:
        return chosen
    removed = []
    for entry in chosen:
        folder = Path(entry["path"])
        if entry["kind"] in ("variant", "export") and older_than_days is not None:
            # a build may have just used it
            used = _mtime(folder / ("manifest.json" if entry["kind"] == "variant" else RECORD))
            if used is not None and (now - used) < older_than_days * DAY_S:
                continue
        if _remove_folder(folder):
            removed.append(entry)
    if removed:
        from harness.build.build_index import drop_stale
        drop_stale(root)  # entries that named a removed variant
    return removed

"""A built variant's folder in the cache: whether it can be reused, and marking it used."""

from __future__ import annotations

import json
import os
from pathlib import Path

from agents.artifacts import artifact_complete, artifact_digest


def cached_manifest(folder: Path) -> dict | None:
    """The variant's manifest when its artifact is whole and has the recorded sha256; None
    when it is missing or corrupt (it is then rebuilt)."""
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
    return None


def touch(folder: Path) -> None:
    """Last used = now: `harness cache prune --older-than-days` goes by this."""
    try:
        os.utime(folder / "manifest.json")
    except OSError:
        pass  # a read-only cache is still a cache

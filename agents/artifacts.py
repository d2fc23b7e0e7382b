"""Identity of an artifact on disk. Most formats are one file; some have companions with the
same stem (OpenVINO IR: model.xml + model.bin). The digest covers every file, so an agent
never loads a half-copied or tampered model."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def artifact_files(path: str | Path, companions: tuple[str, ...] | list[str] = ()) -> list[Path]:
    main = Path(path)
    return [main] + [main.with_suffix(suffix) for suffix in companions]


def artifact_digest(path: str | Path, companions: tuple[str, ...] | list[str] = ()) -> str:
    """sha256 of a one-file artifact; for several files, sha256 over each file's name and
    sha256 (so a single-file digest stays the plain file hash)."""
    if not companions:
        return sha256_file(path)
    h = hashlib.sha256()
    for file in artifact_files(path, companions):
        h.update(file.name.encode() + b"\0" + sha256_file(file).encode() + b"\n")
    return h.hexdigest()


def artifact_size(path: str | Path, companions: tuple[str, ...] | list[str] = ()) -> int:
    return sum(f.stat().st_size for f in artifact_files(path, companions))


def artifact_complete(path: str | Path, companions: tuple[str, ...] | list[str] = ()) -> bool:
    return all(f.is_file() for f in artifact_files(path, companions))

"""Content keys of what the build node produces.

A variant's key hashes everything that determines its artifact: the model's source and
weights digest, inputs and dataset, every step's config, the format's options, the versions
of its toolchain, and the source code of the harness modules that produced it (the source
loader, the dataset, the chain's methods, the format, and everything of the harness they
import). An edit to `methods/prune.py` or to a format's exporter therefore gives new keys and
a rebuild, as asv's benchmark versions and Olive's pass keys do, instead of a stale artifact
stored under the new git sha.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from pathlib import Path
from typing import Iterable

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the folder holding harness/
BUILD_LAYOUT_VERSION = 3  # bump when the cache's folder layout or manifest changes

# The import closure of a module follows harness imports into these packages only: they
# are what turns a model into an artifact. Registries (package __init__ files) are not
# followed: adding an unrelated method or format to one must not rebuild every variant.
ARTIFACT_PACKAGES = ("harness.models.", "harness.data.", "harness.methods.",
                     "harness.formats.", "harness.tasks.", "harness.build.",
                     # the agent modules that shape what is stored: the eval pack's format,
                     # input specs (synthetic draws), array layout
                     "agents.evalpack", "agents.cell", "agents.arrays")
# Build modules that do not shape an artifact (keys, the cache's listing and pruning).
NOT_ARTIFACT = ("harness.build.keys", "harness.build.cache", "harness.build.parity")


def step_config(step) -> dict:
    """A step's config as stored and hashed: everything but its name (two matrices may call
    the same method differently; the artifact is the same)."""
    return step.model_dump(mode="json", exclude={"name"})


def module_file(module: str) -> Path | None:
    """The source file of a harness module, found without importing it (importing a format
    module would import its toolchain); None when the name is not a module (an attribute of
    `from harness.x import name`)."""
    path = PROJECT_ROOT.joinpath(*module.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def source_text(module: str) -> str:
    """The source of a harness module (the digest's input; tests patch it to simulate an
    edit)."""
    path = module_file(module)
    if path is None:
        raise ModuleNotFoundError(f"no Python source for {module} under {PROJECT_ROOT}")
    return path.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1024)
def _imports(module: str, text: str) -> frozenset[str]:
    """Harness modules `module` imports anywhere (the harness imports heavy toolchains
    inside functions, so a module-level scan would miss most of them). Kept per (module,
    source text): a sweep's variants have ~40 closures over the same ~30 modules, and
    parsing them again for each cost a build process ~3 s; an edited source is parsed
    anew."""
    found: set[str] = set()
    package = module.rpartition(".")[0]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            # `from harness.methods import cast` imports the submodule harness.methods.cast
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(name for name in found if _followed(name))


def _followed(module: str) -> bool:
    if not module.startswith(ARTIFACT_PACKAGES) or module in NOT_ARTIFACT:
        return False
    path = module_file(module)
    return path is not None and path.name != "__init__.py"


def import_closure(modules: Iterable[str]) -> list[str]:
    """`modules` and the artifact-shaping harness modules they import, transitively."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_imports(name, source_text(name)) - seen)
    return sorted(seen)


@functools.lru_cache(maxsize=256)
def _closure_digest(modules: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    h = hashlib.sha256()
    closure = import_closure(modules)
    for name in closure:
        h.update(name.encode() + b"\0" + source_text(name).encode() + b"\0")
    return h.hexdigest()[:16], tuple(closure)


def code_digest(modules: Iterable[str]) -> str:
    """Digest of the source of `modules` and their import closure (see ARTIFACT_PACKAGES)."""
    return _closure_digest(tuple(sorted(set(modules))))[0]


def code_modules(modules: Iterable[str]) -> list[str]:
    """The modules code_digest reads: recorded in the manifest so a user sees what a
    variant's key depends on."""
    return list(_closure_digest(tuple(sorted(set(modules))))[1])


def clear_digest_cache() -> None:
    _closure_digest.cache_clear()
    _imports.cache_clear()


def content_key(payload: dict) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]

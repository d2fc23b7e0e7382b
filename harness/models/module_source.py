"""`module:pkg.mod:factory`: a user's own model, imported with the matrix's folder on
sys.path so it can sit next to the matrix file. The factory takes no arguments and returns
a torch.nn.Module."""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path

from harness.models.base import SourceProblem, weights_file_problem

ALLOWED = "module:pkg.mod:factory, a module importable from the matrix's folder (or the " \
          "environment) with a callable that takes no arguments and returns a torch.nn.Module"


FORM = "module:pkg.mod:factory"
REF = r"[A-Za-z_][\w.]*:[A-Za-z_]\w*"  # what may follow the scheme
KIND = "module"
TASKS = ("classification", "embedding", "generic")
DEFAULT_TASK = "classification"


def inputs(ref: str, spec, base_dir: Path) -> list:
    """The declared inputs, fed positionally in the order given (the forward's order)."""
    from harness.models.base import declared_inputs
    return declared_inputs(spec)

def _import(module_name: str, base_dir: Path):
    folder = str(base_dir)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        return importlib.import_module(module_name)
    finally:
        if added:
            sys.path.remove(folder)


def _factory(ref: str, base_dir: Path):
    module_name, _, factory_name = ref.rpartition(":")
    mod = _import(module_name, base_dir)
    factory = getattr(mod, factory_name, None)
    if not callable(factory):
        raise ValueError(f"{module_name} has no callable {factory_name!r}")
    return mod, factory


def _built(ref: str, factory):
    import torch

    torch.manual_seed(0)
    model = factory()
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"{ref} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def build_factory(ref: str, base_dir: Path):
    """The factory's module, freshly built (a distillation student)."""
    return _built(ref, _factory(ref, base_dir)[1])


def check(ref: str, spec, base_dir: Path) -> SourceProblem | None:
    """Import the module and call the factory: nothing cheaper tells whether a user's code
    builds (and it is what a sweep would do first)."""
    try:
        _, factory = _factory(ref, base_dir)
        _built(ref, factory)
    except Exception as exc:  # noqa: BLE001 - the user's code may raise anything
        return SourceProblem("source", f"module:{ref} cannot be built: "
                             f"{type(exc).__name__}: {exc}", ALLOWED)
    return weights_file_problem(spec.weights, base_dir)


def load(ref: str, spec, base_dir: Path, cache_dir: Path):
    mod, factory = _factory(ref, base_dir)
    model = _built(ref, factory)
    module_file = getattr(mod, "__file__", None)
    info = {"source": f"module:{ref}", "module_file": module_file,
            # the user's code shapes the artifact as much as the weights do
            "module_sha256": (hashlib.sha256(Path(module_file).read_bytes()).hexdigest()
                              if module_file and Path(module_file).is_file() else None)}
    if spec.weights:
        from harness.models.weights import apply_weights
        info.update(apply_weights(model, spec.weights, base_dir))
    return model, info

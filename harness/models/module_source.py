"""`module:pkg.mod:factory`: a user's own model, imported with the matrix's folder on
sys.path so it can sit next to the matrix file."""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path

import torch

from harness.matrix.schema import ModelSpec


def load_module_factory(ref: str, spec: ModelSpec, base_dir: Path) -> tuple[torch.nn.Module, dict]:
    module_name, _, factory_name = ref.rpartition(":")
    folder = str(base_dir)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        mod = importlib.import_module(module_name)
    finally:
        if added:
            sys.path.remove(folder)
    factory = getattr(mod, factory_name, None)
    if not callable(factory):
        raise ValueError(f"{module_name} has no callable {factory_name!r}")
    torch.manual_seed(0)
    model = factory()
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"{ref} returned a {type(model).__name__}, not a torch.nn.Module")
    module_file = getattr(mod, "__file__", None)
    info = {"source": f"module:{ref}", "module_file": module_file,
            # the user's code shapes the artifact as much as the weights do
            "module_sha256": (hashlib.sha256(Path(module_file).read_bytes()).hexdigest()
                              if module_file and Path(module_file).is_file() else None)}
    if spec.weights:
        from harness.models.weights import apply_weights
        info.update(apply_weights(model, spec.weights, base_dir))
    return model, info

"""Loading user weight files without running their code."""

from __future__ import annotations

from pathlib import Path

import torch


def resolve_weights_path(weights: str, base_dir: Path) -> Path:
    path = Path(weights)
    if not path.is_absolute():
        path = base_dir / path  # paths in a matrix are relative to the matrix file
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    return path


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file, or a torch file loaded with weights_only=True: a pickle that would
    execute code is refused by torch's restricted unpickler."""
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise RuntimeError("loading .safetensors needs the 'safetensors' package") from exc
        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError and others for unsafe content
        raise RuntimeError(f"refused to load {path}: not a plain state_dict "
                           f"(weights_only=True rejected it: {type(exc).__name__})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    allowed = ("allowed: a dict of parameter names to tensors, as saved by "
               "torch.save(model.state_dict(), path), or {'state_dict': {...}}")
    if not isinstance(state, dict):
        raise RuntimeError(f"refused {path}: it holds a {type(state).__name__}, not a "
                           f"state_dict ({allowed})")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise RuntimeError(f"refused {path}: entry {str(key)[:80]!r} is a "
                               f"{type(value).__name__}, not a tensor ({allowed})")
    return state


def apply_weights(module: torch.nn.Module, weights: str, base_dir: Path) -> dict:
    path = resolve_weights_path(weights, base_dir)
    module.load_state_dict(load_state_dict(path), strict=True)
    return {"weights_file": str(path)}

"""Derived models that cannot be pickled, cached as torch.export programs instead.

A QAT-converted model is a graph of quantize / dequantize ops (torch.export's GraphModule);
pickling it fails inside torch ("Can't pickle local object ..."), so without this every
format of a QAT variant trained it again. `torch.export.save` keeps the graph, its int8
weights and its dynamic batch; what the graph module loses on the way (the harness's traits
and the train/eval switch an exported graph needs) is restored on load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from harness.models.traits import traits_of, with_traits


def is_graph(module) -> bool:
    return isinstance(module, torch.fx.GraphModule)


def save_graph(module, path: Path, example: np.ndarray) -> None:
    """Export `module` again on `example` (its batch axis dynamic) and save it atomically,
    its traits beside it."""
    from harness.models.dims import batch_dim

    inputs = (torch.from_numpy(np.ascontiguousarray(example)),)
    program = torch.export.export(module, inputs, dynamic_shapes=(batch_dim(),))
    tmp = path.with_suffix(".tmp.pt2")
    torch.export.save(program, tmp)
    _traits_path(path).write_text(json.dumps(traits_of(module).__dict__))
    tmp.replace(path)


def load_graph(path: Path):
    from harness.methods.qat import allow_train_eval

    module = torch.export.load(path).module()
    allow_train_eval(module)
    traits = json.loads(_traits_path(path).read_text())
    return with_traits(module, **{k: v for k, v in traits.items() if v is not None}).eval()


def _traits_path(path: Path) -> Path:
    return path.with_suffix(".traits.json")

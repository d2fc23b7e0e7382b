"""Dynamic dimensions for the exporters, from the inputs' named axes."""

from __future__ import annotations

MAX_DIM = 4096


def batch_dim() -> dict:
    import torch
    return {0: torch.export.Dim("batch", min=1, max=MAX_DIM)}


def dynamic_shapes(specs, model=None) -> tuple:
    """torch.export's dynamic_shapes for positional inputs: every named dim (the batch, a
    sequence length) dynamic, its range inferred by export (Dim.DYNAMIC: a model whose
    position table stops at 512 gets that bound, not an error); fixed dims static."""
    import torch

    shapes = []
    for spec in specs:
        dims = {i: torch.export.Dim.DYNAMIC for i, d in enumerate(spec.dims)
                if isinstance(d, str)}
        shapes.append(dims or None)
    return for_signature(model, tuple(shapes))


def for_signature(model, shapes: tuple) -> tuple:
    """dynamic_shapes follows the forward's signature: a forward(*inputs) (the harness's
    wrappers: mixed precision, transformers) takes them as one packed argument."""
    import inspect

    if model is None:
        return shapes
    params = list(inspect.signature(model.forward).parameters.values())
    if len(params) == 1 and params[0].kind is inspect.Parameter.VAR_POSITIONAL:
        return (shapes,)
    return shapes


def only_batch_dynamic(specs, model=None) -> tuple:
    """dynamic_shapes with the batch as the one dynamic dim, shared by every input (what
    LiteRT's converter can take)."""
    import torch

    batch = torch.export.Dim("batch", min=1, max=MAX_DIM)
    return for_signature(model, tuple({spec.batch_axis: batch} if spec.batch_axis is not None
                                      else None for spec in specs))


def example_tensors(specs, arrays: dict, batch: int = 2) -> tuple:
    """Positional example inputs of `batch` samples (2: a batch of 1 would let exporters
    specialise the dim) from arrays in the model's layout."""
    import numpy as np
    import torch

    from agents.arrays import contiguous

    out = []
    for spec in specs:
        array = arrays[spec.name]
        if spec.batch_axis is not None:
            index = np.arange(batch) % array.shape[spec.batch_axis]
            array = np.take(array, index, axis=spec.batch_axis)
        out.append(torch.from_numpy(contiguous(array)))
    return tuple(out)


def name_onnx_dims(model, specs) -> None:
    """Give the ONNX graph's dynamic dims the inputs' axis names (an exporter calls them
    s0, s1, ...): every value info using a renamed symbol follows."""
    mapping = {}
    for graph_input, spec in zip(model.graph.input, specs):
        for dim, name in zip(graph_input.type.tensor_type.shape.dim, spec.dims):
            if isinstance(name, str) and dim.dim_param and dim.dim_param != name:
                mapping[dim.dim_param] = name
    if not mapping:
        return
    for info in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dim in info.type.tensor_type.shape.dim:
            if dim.dim_param in mapping:
                dim.dim_param = mapping[dim.dim_param]

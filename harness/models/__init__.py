"""Model sources, one module per scheme: `builtin:NAME`, `torchvision:ARCH`,
`module:pkg.mod:factory`. Each resolves to an fp32 torch module in eval mode plus a digest
of its weights (part of every variant key built from it), and can say at plan time why a
model cannot be built (harness.models.base)."""

from __future__ import annotations

import importlib
from pathlib import Path

from harness.models.base import LoadedModel, SourceProblem, weights_digest  # noqa: F401

SOURCES = {"builtin": "harness.models.builtin",
           "torchvision": "harness.models.torchvision_source",
           "module": "harness.models.module_source"}


def source_module(source: str) -> str | None:
    """The module that loads this source (None for a module handed to the Python API)."""
    return SOURCES.get(source.partition(":")[0])


def source_form_error(source: str) -> str | None:
    """Why `source` is not of a registered form (its scheme's REF pattern), or None."""
    import re

    scheme, sep, ref = source.partition(":")
    forms = ", ".join(importlib.import_module(m).FORM for m in SOURCES.values())
    if not sep or scheme not in SOURCES:
        return f"must be one of {forms}"
    plugin = importlib.import_module(SOURCES[scheme])
    if not re.fullmatch(plugin.REF, ref):
        return f"must be {plugin.FORM}"
    return None


def _plugin(source: str):
    scheme, _, ref = source.partition(":")
    if scheme not in SOURCES:
        raise ValueError(f"unknown model source {source!r} (allowed: "
                         f"{', '.join(s + ':' for s in SOURCES)})")
    return importlib.import_module(SOURCES[scheme]), ref


def check_source(spec, base_dir: Path) -> SourceProblem | None:
    plugin, ref = _plugin(spec.source)
    return plugin.check(ref, spec, Path(base_dir))


def load_model(spec, base_dir: Path, cache_dir: Path) -> LoadedModel:
    plugin, ref = _plugin(spec.source)
    module, shape, info = plugin.load(ref, spec, Path(base_dir), Path(cache_dir))
    if spec.input_shape is not None and tuple(spec.input_shape) != tuple(shape):
        raise ValueError(f"model {spec.name}: input_shape {spec.input_shape} does not match "
                         f"the model's {list(shape)}")
    module.eval()
    return LoadedModel(name=spec.name, module=module, input_shape=tuple(shape),
                       weights_digest=weights_digest(module), info=info)

"""Model sources, one module per scheme, one registry: `builtin:NAME`, `torchvision:ARCH`,
`module:pkg.mod:factory`, `onnx:PATH`, `hf:PATH_OR_ID`. Each resolves to an fp32 torch
module in eval mode (or, for a file source, the file) with its named inputs and a digest of
its weights (part of every variant key built from it), and can say at plan time why a
model cannot be built (harness.models.base)."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path

from harness.models.base import LoadedModel, SourceError, SourceProblem  # noqa: F401
from harness.models.base import single_input_shape, weights_digest  # noqa: F401

SOURCES = {"builtin": "harness.models.builtin",
           "torchvision": "harness.models.torchvision_source",
           "module": "harness.models.module_source",
           "onnx": "harness.models.onnx_source",
           "hf": "harness.models.hf_source"}


def source_module(source: str) -> str | None:
    """The module that loads this source (None for a module handed to the Python API)."""
    return SOURCES.get(source.partition(":")[0])


def source_form_error(source: str) -> str | None:
    """Why `source` is not of a registered form (its scheme's REF pattern), or None."""
    scheme, sep, ref = source.partition(":")
    if not sep or scheme not in SOURCES:
        forms = ", ".join(importlib.import_module(m).FORM for m in SOURCES.values())
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


@dataclass(frozen=True)
class ModelFacts:
    """What planning knows of a model without building it."""
    kind: str                 # module | file
    inputs: tuple             # agents.cell.InputSpec, in the model's order
    task: str
    source: str = ""          # the source's scheme: builtin, torchvision, module, hf, onnx

    @property
    def axes(self) -> tuple[str, ...]:
        """Named dynamic axes other than the batch, in first-use order."""
        return tuple(dict.fromkeys(a for s in self.inputs for a in s.axes))


def check_source(spec, base_dir: Path) -> SourceProblem | None:
    plugin, ref = _plugin(spec.source)
    return plugin.check(ref, spec, Path(base_dir))


def _default_task(spec, plugin, base_dir: Path) -> str:
    """The source's default task, except that labelled data (its labels are class ids,
    the only labels a dataset holds) makes a model a classifier where the source serves it."""
    from harness.data import is_labelled
    if "classification" in plugin.TASKS and is_labelled(spec.dataset, base_dir):
        return "classification"
    return plugin.DEFAULT_TASK


def model_facts(spec, base_dir: Path) -> ModelFacts:
    """Inputs, kind and task of a model (raises SourceError naming the field)."""
    plugin, ref = _plugin(spec.source)
    task = spec.task or _default_task(spec, plugin, Path(base_dir))
    if task not in plugin.TASKS:
        raise SourceError(SourceProblem("task", f"{spec.source.partition(':')[0]}: sources "
                                        f"do not serve task {task!r}",
                                        ", ".join(plugin.TASKS)))
    return ModelFacts(plugin.KIND, tuple(plugin.inputs(ref, spec, Path(base_dir))), task,
                      spec.source.partition(":")[0])


def load_model(spec, base_dir: Path, cache_dir: Path) -> LoadedModel:
    plugin, ref = _plugin(spec.source)
    facts = model_facts(spec, base_dir)
    if spec.task != facts.task:  # the source builds for the resolved task (its Auto class)
        spec = spec.model_copy(update={"task": facts.task})
    module, info = plugin.load(ref, spec, Path(base_dir), Path(cache_dir))
    shape = single_input_shape(facts.inputs)
    if module is None:  # a file source: its digest is the file's
        return LoadedModel(name=spec.name, module=None, input_shape=shape,
                           weights_digest=info["file_sha256"], info=info, inputs=facts.inputs,
                           task=facts.task, file=info["file"])
    module.eval()
    return LoadedModel(name=spec.name, module=module, input_shape=shape,
                       weights_digest=weights_digest(module), info=info, inputs=facts.inputs,
                       task=facts.task)

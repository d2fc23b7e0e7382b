"""The method registry: a method is a config (harness.matrix.methods) plus one function.

Model-level methods transform a torch model on the build node; format-level methods are
realised by each format's own toolchain (harness.formats), because that runs fastest on
its runtime. An entry also says, from the config alone, what its output will be (traits,
harness.models.traits), whether it trains, into how many variants it expands and what it
can never realise: the matrix's checks and the formats read these, never a method's name.
Functions are named by module path and imported when a build needs them, so planning a
matrix imports neither torch nor torch-pruning nor optuna."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Literal


def _none(step) -> None:
    return None


def _no_traits(step) -> dict:
    return {}


def _one(step) -> int:
    return 1


def _never(step) -> bool:
    return False


@dataclass(frozen=True)
class MethodEntry:
    level: Literal["model", "format"]
    function: str | None = None   # "module:function", apply(module, step, ctx) -> MethodOutput
    extras: tuple[str, ...] = field(default=())  # modules the function needs
    # What the output is, predicted from the config (dtype, qdq, sparsity)
    traits: Callable[[object], dict] = _no_traits
    # Why this config cannot be realised whatever the format, or None
    check: Callable[[object], str | None] = _none
    # Whether it trains (needs a labelled train split)
    trains: Callable[[object], bool] = _never
    # Into how many variants it expands (a search's Pareto members: NAME-p1 ... NAME-pK)
    variants: Callable[[object], int] = _one
    # Why this method cannot transform such a model (harness.models.ModelFacts), or None
    applies: Callable[[object], str | None] = _none
    chainable: bool = True        # may be a step of a chain
    identity: bool = False        # leaves the model as it is (nothing to cache)
    precision: str | None = None  # what a format-level step computes in

    def apply(self) -> Callable:
        module, _, name = self.function.partition(":")
        return getattr(importlib.import_module(module), name)


def _qat_check(step) -> str | None:
    if step.calibration.method != "minmax":
        return (f"qat: calibration method '{step.calibration.method}' is not realised: the "
                f"QAT observers are moving-average min/max; use method minmax")
    return None


def _qat_traits(step) -> dict:
    scheme = step.scheme
    return {"qdq": {"weights": {"dtype": "int8", "symmetric": True,
                                "per_channel": scheme.per_channel,
                                "reduce_range": scheme.reduce_range is True},
                    "activations": {"dtype": scheme.activation_dtype,
                                    "symmetric": scheme.symmetric, "per_channel": False}}}


def _one_image_input(facts) -> str | None:
    """The training methods here work on one float image batch [batch, C, H, W]."""
    specs = facts.inputs
    if len(specs) != 1 or specs[0].dtype != "float32" or specs[0].batch_axis != 0:
        return "it works on models with one float input, the batch first"
    if facts.axes:
        return f"it works on fixed input shapes; this model's axis {facts.axes[0]!r} varies"
    return None


def _nas_applies(facts) -> str | None:
    reason = _one_image_input(facts)
    if reason is None and len(facts.inputs[0].dims) != 4:
        return "it searches 2-D CNNs: the input must be [batch, C, H, W]"
    return reason


def _classifier(facts) -> str | None:
    if facts.task != "classification":
        return f"it needs a classifier; this model's task is {facts.task}"
    return _one_image_input(facts)


def _prune_trains(step) -> bool:
    return step.finetune is not None and step.finetune.epochs > 0


METHODS: dict[str, MethodEntry] = {
    "baseline": MethodEntry(level="model", function="harness.methods.baseline:apply_baseline",
                            identity=True),
    "quantize": MethodEntry(level="format", precision="int8"),
    "cast": MethodEntry(level="model", function="harness.methods.cast:apply_cast",
                        traits=lambda step: {"dtype": step.dtype}),
    "qat": MethodEntry(level="model", function="harness.methods.qat:apply_qat",
                       extras=("torchao",), traits=_qat_traits, check=_qat_check,
                       trains=lambda step: True, applies=_classifier),
    "prune": MethodEntry(level="model", function="harness.methods.prune:apply_prune",
                         extras=("torch_pruning",), trains=_prune_trains,
                         applies=_one_image_input,
                         traits=lambda step: ({"sparsity": step.sparsity}
                                              if step.structure == "unstructured" else {})),
    "distill": MethodEntry(level="model", function="harness.methods.distill:apply_distill",
                           trains=lambda step: True, applies=_classifier),
    "nas": MethodEntry(level="model", function="harness.methods.nas:apply_nas",
                       extras=("optuna",), trains=lambda step: True, applies=_nas_applies,
                       variants=lambda step: step.pareto_size, chainable=False),
}


def traits_of_steps(steps) -> dict:
    """The traits the chain's model-level steps give the model (later steps win)."""
    traits: dict = {}
    for step in steps:
        traits |= METHODS[step.kind].traits(step)
    return traits


def precision_of(steps) -> str:
    """What the variant computes in: a format-level step's precision, else the model's
    traits (qdq: int8; dtype: that dtype), else fp32."""
    precision = "fp32"
    for step in steps:
        entry = METHODS[step.kind]
        traits = entry.traits(step)
        if entry.precision:
            precision = entry.precision
        elif "qdq" in traits:
            precision = "int8"
        elif "dtype" in traits:
            precision = traits["dtype"]
    return precision

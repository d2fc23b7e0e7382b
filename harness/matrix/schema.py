"""The matrix file's schema: strict pydantic models, cross-field rules and the checks that
need no model built (dangling references, chain cycles, training data, student fit).

Method configs and the shared field types live in harness.matrix.methods."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from harness.data import DATASETS
from harness.models import source_form_error
from harness.tasks import TASKS

from harness.matrix.methods import (  # noqa: F401 - re-exported: the schema's vocabulary
    METHOD_TAGS, BaselineMethod, CalibrationSpec, CastMethod,
    ChainMethod, DeviceKind, DistillMethod, FormatName, MethodSpec, Name, NasMethod, NasSpace,
    PruneMethod, QatMethod, QuantizeMethod, SchemeSpec, StepSpec, Strict, StudentSpec,
    TrainSpec)
from harness.matrix.scenarios import (  # noqa: F401 - re-exported
    SCENARIOS, OfflineSpec, ServerSpec)

MAX_CHAIN_DEPTH = 16       # chains naming chains naming chains ...
MAX_CHAIN_STEPS = 64       # steps of one method once its nested chains are flattened
MAX_CELLS = 10_000         # models x methods x formats x devices
MAX_EXCLUDE_RULES = 1000


AXIS_RE = r"^[A-Za-z_][A-Za-z0-9_]{0,31}$"  # a named dimension: batch, seq, frames, ...
Axis = Annotated[str, Field(pattern=AXIS_RE)]
Dim = Annotated[int, Field(ge=1, le=1_000_000)] | Axis
InputName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}$")]
DTYPES = ("float32", "float16", "int64", "int32", "int8", "uint8", "bool")


class InputDecl(Strict):
    """One named input: its dims (ints, or names of dynamic axes: `batch` is the one
    measure.batch_sizes sweeps; others are swept by measure.shapes), dtype, and how
    synthetic values are drawn (a range, or a constant fill)."""
    shape: list[Dim] = Field(max_length=8)
    dtype: Literal[DTYPES] = "float32"
    range: tuple[float, float] | None = None
    fill: float | None = None

    @model_validator(mode="after")
    def _values(self) -> "InputDecl":
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError("range must be [low, high] with low < high")
        if self.range is not None and self.fill is not None:
            raise ValueError("give range or fill, not both")
        return self


class ImageFolderSpec(Strict):
    """Labelled images in class folders (torchvision's ImageFolder layout)."""
    path: str
    size: list[Annotated[int, Field(ge=1, le=4096)]] = Field(min_length=2, max_length=2)
    mean: list[float] = Field(default=[0.485, 0.456, 0.406], min_length=1, max_length=4)
    std: list[Annotated[float, Field(gt=0)]] = Field(default=[0.229, 0.224, 0.225],
                                                    min_length=1, max_length=4)


class NpzDataset(Strict):
    npz: str           # arrays named by input, optional `labels` (see harness/data/npz.py)


class ImageFolderDataset(Strict):
    imagefolder: ImageFolderSpec


DatasetSpec = Literal[tuple(DATASETS)] | NpzDataset | ImageFolderDataset


def dataset_name(dataset) -> str:
    """The registry name of a model's dataset setting."""
    if isinstance(dataset, str):
        return dataset
    return "npz" if isinstance(dataset, NpzDataset) else "imagefolder"


class ModelSpec(Strict):
    name: Name
    source: str
    weights: str | None = None
    # shorthand for one float input named "input" with the batch first: [C, H, W]
    input_shape: list[Annotated[int, Field(ge=1, le=4096)]] | None = Field(
        default=None, min_length=1, max_length=4)
    inputs: dict[InputName, InputDecl] | None = Field(default=None, max_length=64)
    task: Literal[tuple(TASKS)] | None = None   # None: the source's default
    dataset: DatasetSpec = "synthetic"
    # this model's batch sizes in place of measure.batch_sizes (a large model measured at
    # batch 1 only, where a batch of 8 would cost seconds a call)
    batch_sizes: list[Annotated[int, Field(ge=1, le=4096)]] | None = Field(
        default=None, min_length=1, max_length=16)

    @field_validator("source")
    @classmethod
    def _source_form(cls, value: str) -> str:
        error = source_form_error(value)
        if error:
            raise ValueError(error)
        return value

    @model_validator(mode="after")
    def _shape_known(self) -> "ModelSpec":
        if self.input_shape is not None and self.inputs is not None:
            raise ValueError("give input_shape (one float input) or inputs, not both")
        if (self.input_shape is None and self.inputs is None
                and self.source.partition(":")[0] in ("torchvision", "module")):
            raise ValueError("input_shape or inputs is required for torchvision: and module: "
                             "sources")
        if self.dataset == "digits" and self.source.startswith("torchvision:"):
            raise ValueError("dataset 'digits' has 1x32x32 inputs; use it with builtin models")
        if self.batch_sizes is not None and len(set(self.batch_sizes)) != len(self.batch_sizes):
            raise ValueError("batch_sizes must not repeat")
        return self

    @property
    def dataset_name(self) -> str:
        return dataset_name(self.dataset)




class MeasureSpec(Strict):
    batch_sizes: list[Annotated[int, Field(ge=1, le=4096)]] = Field(default=[1], min_length=1,
                                                                  max_length=16)
    threads: int = Field(default=1, ge=1, le=256)
    warmup_s: float = Field(default=1.0, ge=0, le=600)
    min_iterations: int = Field(default=50, ge=1, le=10_000_000)
    min_seconds: float = Field(default=2.0, ge=0, le=3600)
    max_seconds: float = Field(default=30.0, gt=0, le=86_400)
    # Stop early once the 95% CI of the median is this narrow (relative to the median).
    ci_rel_width: float = Field(default=0.02, gt=0, le=1)
    # A measurement whose coefficient of variation exceeds this is flagged noisy.
    noisy_cv: float = Field(default=0.1, gt=0, le=10)
    accuracy: bool = True
    # Fresh worker processes per cell, run back to back and pooled: a single process's
    # samples share one memory layout and core, so its CI cannot cover a second process.
    # With 3 or more the stored CI spans the processes (agents/repeats.py).
    processes: int = Field(default=1, ge=1, le=16)
    timeout_s: float = Field(default=900.0, gt=0, le=86_400)
    # RSS of the measuring process (and its children) above which the cell is killed and
    # recorded as failed: a runaway runtime must not take the agent host down.
    memory_limit_mb: float | None = Field(default=None, ge=16, le=4_000_000)
    # A per-layer profile of every timed (shape, batch) from the runtime's own profiler, in
    # a pass after the timed loops (agents/probes/profile.py); profile_runs: runs profiled.
    profile: bool = False
    profile_runs: int = Field(default=10, ge=1, le=10_000)
    # values of named dynamic axes, swept like batch sizes: {seq: [32, 128]}
    shapes: dict[Axis, list[Annotated[int, Field(ge=1, le=1_000_000)]]] = Field(
        default={}, max_length=8)
    # MLPerf-style scenarios measured per (shape, batch): single_stream is the timed loop
    # above (always measured); offline and server run after it with their settings
    scenarios: list[Literal[SCENARIOS]] = Field(default=["single_stream"], min_length=1)
    offline: OfflineSpec = OfflineSpec()
    server: ServerSpec = ServerSpec()

    @model_validator(mode="after")
    def _ordered(self) -> "MeasureSpec":
        if self.max_seconds < self.min_seconds:
            raise ValueError("max_seconds must be >= min_seconds")
        if len(set(self.batch_sizes)) != len(self.batch_sizes):
            raise ValueError("batch_sizes must not repeat")
        for axis, values in self.shapes.items():
            if axis == "batch":
                raise ValueError("shapes.batch: the batch is swept by batch_sizes")
            if not values or len(set(values)) != len(values):
                raise ValueError(f"shapes.{axis}: give one or more values, none repeated")
        if len(set(self.scenarios)) != len(self.scenarios):
            raise ValueError("scenarios must not repeat")
        if "single_stream" not in self.scenarios:
            raise ValueError("scenarios: single_stream is always measured (the quality and "
                             "the latency rows come from it); list it with the others")
        if "server" in self.scenarios and self.server.p99_bound_ms is None:
            raise ValueError("server.p99_bound_ms: the server scenario needs a p99 latency "
                             "bound in ms (e.g. server: {p99_bound_ms: 50})")
        return self


class ExcludeRule(Strict):
    """Cells matching every field given are skipped; a field is one name or a list of
    names (any of them): {method: [kd, nas], format: [tflite, torch]}."""
    model: Name | list[Name] | None = None
    method: Name | list[Name] | None = None
    format: FormatName | list[FormatName] | None = None
    device: DeviceKind | list[DeviceKind] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> "ExcludeRule":
        if not any((self.model, self.method, self.format, self.device)):
            raise ValueError("an exclude rule needs at least one of model, method, format, device")
        return self

    def names(self, field: str) -> frozenset | None:
        """The names a field matches, or None where the rule leaves it open."""
        value = getattr(self, field)
        if value is None:
            return None
        return frozenset([value] if isinstance(value, str) else value)


class Matrix(Strict):
    name: Name
    models: list[ModelSpec] = Field(min_length=1, max_length=1000)
    methods: list[MethodSpec] = Field(min_length=1, max_length=1000)
    formats: list[FormatName] = Field(min_length=1)
    devices: list[DeviceKind] = Field(min_length=1)
    measure: MeasureSpec = MeasureSpec()
    exclude: list[ExcludeRule] = Field(default=[], max_length=MAX_EXCLUDE_RULES)
    # method name -> (flattened steps, chain nesting depth), filled by validation
    _flat_steps: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _references(self) -> "Matrix":
        cells = len(self.models) * len(self.methods) * len(self.formats) * len(self.devices)
        if cells > MAX_CELLS:
            raise ValueError(f"models x methods x formats x devices is {cells} cells "
                             f"(allowed: at most {MAX_CELLS}; split the matrix)")
        for label, names in (("models", [m.name for m in self.models]),
                             ("methods", [m.name for m in self.methods]),
                             ("formats", list(self.formats)), ("devices", list(self.devices))):
            seen = set()
            for name in names:
                if name in seen:
                    raise ValueError(f"{label}: duplicate name {name!r}")
                seen.add(name)
        model_names = {m.name for m in self.models}
        method_names = {m.name for m in self.methods}
        for i, rule in enumerate(self.exclude):
            for field, known in (("model", model_names), ("method", method_names)):
                for name in sorted((rule.names(field) or frozenset()) - known):
                    raise ValueError(f"exclude[{i}].{field}: {name!r} is not a {field} of this "
                                     f"matrix (allowed: {_names(known)})")
        for method in self.methods:
            self.steps(method.name)  # raises on dangling references and cycles
        self._check_chains_and_training()
        for method in self.methods:
            # a config that can say from the matrix's models alone that it cannot work
            check = getattr(method, "matrix_error", None)
            error = check(self.models) if check else None
            if error:
                raise ValueError(error)
        return self

    def _check_chains_and_training(self) -> None:
        from harness.methods import METHODS

        # npz data may hold labels: that is checked once the file is read (load)
        trainable = [m.name for m in self.models
                     if m.dataset_name in (*LABELLED_DATASETS, "npz")]
        for method in self.methods:
            steps = self.steps(method.name)
            if isinstance(method, ChainMethod):
                lone = next((s for s in steps if not METHODS[s.kind].chainable), None)
                if lone is not None:
                    raise ValueError(
                        f"methods[{method.name!r}].chain: a {lone.kind} method expands into "
                        f"several variants and cannot be part of a chain (allowed: "
                        f"{', '.join(k for k, e in METHODS.items() if e.chainable)})")
            needs = next((s for s in steps if _needs_training(s)), None)
            if needs is not None and not trainable:
                raise ValueError(
                    f"methods[{method.name!r}]: {needs.kind} needs training data, and no model "
                    f"of this matrix has a labelled train split (allowed datasets: "
                    f"{', '.join(LABELLED_DATASETS)}; models here use: "
                    f"{', '.join(sorted({m.dataset_name for m in self.models}))})")

    def cell_methods(self, method_name: str) -> list[str]:
        """The method names cells carry: one per method; NAME-p1 ... NAME-pK for a method
        that expands into K variants (a search's Pareto members)."""
        from harness.methods import METHODS

        spec = self.method(method_name)
        count = 1 if isinstance(spec, ChainMethod) else METHODS[spec.kind].variants(spec)
        if count > 1:
            return [f"{spec.name}-p{i}" for i in range(1, count + 1)]
        return [spec.name]

    def method(self, name: str) -> MethodSpec:
        return next(m for m in self.methods if m.name == name)

    def model(self, name: str) -> ModelSpec:
        return next(m for m in self.models if m.name == name)

    def measure_for(self, model: str) -> MeasureSpec:
        """The measure settings of one model's cells: its own batch sizes where it has
        them."""
        sizes = self.model(model).batch_sizes
        return self.measure if sizes is None else self.measure.model_copy(
            update={"batch_sizes": list(sizes)})

    def steps(self, method_name: str) -> list[StepSpec]:
        """Flatten a method (a chain may name other chains) into its ordered steps. A nas
        Pareto member (NAME-pK) is its search with `member` set."""
        member = self._member(method_name)
        if member is not None:
            return [member]
        return list(self._flatten(method_name, ())[0])

    def _member(self, cell_method: str):
        """NAME-pK of a method that expands into several variants: its config with
        `member` K, else None."""
        from harness.methods import METHODS

        if any(m.name == cell_method for m in self.methods):
            return None
        base, _, member = cell_method.rpartition("-p")
        spec = next((m for m in self.methods if m.name == base), None)
        if (spec is not None and not isinstance(spec, ChainMethod) and member.isdigit()
                and 1 <= int(member) <= METHODS[spec.kind].variants(spec)):
            return spec.model_copy(update={"member": int(member)})
        return None

    def _flatten(self, method_name: str, trail: tuple[str, ...]) -> tuple[tuple, int]:
        """(steps, nesting depth) of a method. Memoised, and bounded in depth and length
        whatever the order of the methods: chains that double at every level would expand
        exponentially, and deep ones would exhaust the interpreter's stack."""
        cached = self._flat_steps.get(method_name)
        if cached is None:
            cached = self._flatten_uncached(method_name, trail)
            self._flat_steps[method_name] = cached
        if len(trail) + cached[1] > MAX_CHAIN_DEPTH:
            raise ValueError(f"methods[{(trail or (method_name,))[0]!r}].chain: chains nest "
                             f"deeper than {MAX_CHAIN_DEPTH} levels "
                             f"(allowed: at most {MAX_CHAIN_DEPTH})")
        return cached

    def _flatten_uncached(self, method_name: str, trail: tuple[str, ...]) -> tuple[tuple, int]:
        if method_name in trail:
            raise ValueError(f"methods: chain cycle {' -> '.join(trail + (method_name,))}")
        if len(trail) > MAX_CHAIN_DEPTH:
            raise ValueError(f"methods[{trail[0]!r}].chain: chains nest deeper than "
                             f"{MAX_CHAIN_DEPTH} levels (allowed: at most {MAX_CHAIN_DEPTH})")
        spec = next((m for m in self.methods if m.name == method_name), None)
        if spec is None:
            where = f"methods[{trail[-1]!r}].chain" if trail else "methods"
            raise ValueError(f"{where}: {method_name!r} is not a method of this matrix "
                             f"(allowed: {_names(m.name for m in self.methods)})")
        if not isinstance(spec, ChainMethod):
            return (spec,), 0
        flat: list[StepSpec] = []
        depth = 0
        for ref in spec.chain:
            sub, sub_depth = self._flatten(ref, trail + (method_name,))
            flat.extend(sub)
            depth = max(depth, sub_depth + 1)
            if len(flat) > MAX_CHAIN_STEPS:
                raise ValueError(f"methods[{method_name!r}].chain: expands to more than "
                                 f"{MAX_CHAIN_STEPS} steps once nested chains are "
                                 f"flattened (allowed: at most {MAX_CHAIN_STEPS})")
        return tuple(flat), depth


from harness.data import LABELLED as LABELLED_DATASETS  # noqa: E402 - the registry's list


def _needs_training(step) -> bool:
    from harness.methods import METHODS
    return METHODS[step.kind].trains(step)


def training_skip_reason(steps, model: ModelSpec, labelled: bool, task) -> str | None:
    """Why this model cannot go through these steps (None: it can): training needs a
    labelled train split and a task with a training loss."""
    needs = next((s for s in steps if _needs_training(s)), None)
    if needs is None:
        return None
    if not labelled:
        return (f"{needs.kind} trains on a labelled train split; dataset "
                f"'{model.dataset_name}' of model '{model.name}' has none")
    if task.loss is None:
        return (f"{needs.kind} trains with the task's loss; task '{task.name}' of model "
                f"'{model.name}' has no training loss")
    return None


def _names(names, limit: int = 12) -> str:
    """A readable 'allowed' list: sorted, cut after `limit` names."""
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")

"""Python API: optimize and benchmark one model from a script or a notebook.

    from harness.api import ModelOptimizer
    opt = ModelOptimizer("builtin:digits_cnn")              # or any torch.nn.Module
    int8 = opt.quantize(method="static", calibration_data=calib_x)
    slim = opt.prune(sparsity=0.3, method="channel", train_data=(x, y))
    rows = opt.benchmark(models=[opt.convert_to_onnx(), int8], test_data=(test_x, test_y))

The same code paths as `harness sweep`: the method registry (harness.methods), the build
node's variant builder with its content-addressed cache and parity check (harness.build.variant),
and the agent's worker process for measurements (agents.launcher)."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import torch
from pydantic import Field

from harness.api_data import Data, arrays_of, digest_of
from harness.matrix.schema import (DeviceKind, FormatName, InputDecl, InputName, MeasureSpec,
                                   Strict)
from harness.tasks import TASKS

DEFAULT_CACHE = Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness"))


class UnavailableError(RuntimeError):
    """What was asked needs a toolchain or device this host does not have."""


class OptimizerConfig(Strict):
    # the model's inputs, as in a matrix: `input_shape` (one float input, batch first) or
    # `inputs` ({name: {shape, dtype, range | fill}}); read from the model where it says
    input_shape: list[int] | None = Field(default=None, min_length=1, max_length=4)
    inputs: dict[InputName, InputDecl] | None = None
    task: Literal[tuple(TASKS)] | None = None   # None: the source's default
    cache_dir: str = str(DEFAULT_CACHE)
    device: DeviceKind = "intel-cpu"
    # the format quantize() builds in and benchmark() measures torch modules in
    format: FormatName = "onnx"
    measure: MeasureSpec = MeasureSpec(batch_sizes=[1], warmup_s=0.3, min_iterations=30,
                                       min_seconds=1.0, max_seconds=5.0, timeout_s=300)


@dataclass
class Variant:
    """A built artifact (its build manifest: path, format, precision, size, parity, ...)."""
    manifest: dict

    @property
    def path(self) -> Path:
        return Path(self.manifest["artifact_path"])

    def __getattr__(self, name):
        try:
            return self.manifest[name]
        except KeyError:
            raise AttributeError(name) from None


def _step(cls, call: str, **fields):
    """A method config from keyword arguments; pydantic's errors become a ValueError that
    names the argument and what is allowed."""
    from pydantic import ValidationError

    from harness.matrix.messages import describe_validation_error

    try:
        return cls(**fields)
    except ValidationError as exc:
        raise ValueError(f"{call}: {describe_validation_error(exc, cls)}") from None


# prune(method=...): what users write -> (structure, importance)
PRUNE_METHODS = {
    "magnitude": ("unstructured", "l1"), "unstructured": ("unstructured", "l1"),
    "channel": ("channel", "l1"), "structured": ("channel", "l1"), "filter": ("channel", "l1"),
    "l1": ("channel", "l1"), "l2": ("channel", "l2"), "taylor": ("channel", "taylor"),
    "gradient": ("channel", "taylor"),
}


class ModelOptimizer:
    def __init__(self, model: torch.nn.Module | str, config: OptimizerConfig | dict | None = None):
        from harness.models import LoadedModel, weights_digest
        from harness.models.base import single_input_shape

        self.config = (config if isinstance(config, OptimizerConfig)
                       else OptimizerConfig.model_validate(config or {}))
        self.cache_dir = Path(self.config.cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        if isinstance(model, str):
            loaded = self._load_source(model)
        else:
            from types import SimpleNamespace

            from harness.models.base import declared_inputs

            specs = declared_inputs(SimpleNamespace(inputs=self.config.inputs,
                                                    input_shape=self.config.input_shape))
            if specs is None:
                raise ValueError("config.input_shape or config.inputs is required for a "
                                 "torch.nn.Module (e.g. {'input_shape': [3, 224, 224]})")
            module = copy.deepcopy(model).eval()
            loaded = LoadedModel(name=type(model).__name__, module=module,
                                 input_shape=single_input_shape(specs),
                                 weights_digest=weights_digest(module),
                                 info={"source": f"python:{type(model).__name__}"},
                                 inputs=tuple(specs), task=self.config.task or "classification")
        self.original = model if isinstance(model, torch.nn.Module) else None  # as given
        self.source = loaded                  # the fp32 model every result is compared with
        self.model = loaded.module            # the current model: prune/distill replace it
        # Data used where a call gives none: a builtin's own dataset (digits: labelled), else
        # seeded synthetic inputs of the model's shape (fidelity only).
        from harness.data import load_dataset
        self.default_data = load_dataset(
            "digits" if isinstance(model, str) and model.startswith("builtin:") else "synthetic",
            loaded.inputs)

    def _load_source(self, source: str):
        """A model source ('builtin:digits_cnn', 'hf:./folder', 'onnx:model.onnx', ...);
        what cannot be loaded is a ValueError naming the field, as `harness plan` does."""
        from pydantic import ValidationError

        from harness.matrix.messages import describe_validation_error
        from harness.matrix.schema import ModelSpec
        from harness.models import SourceError, check_source, load_model

        try:
            spec = ModelSpec(name="model", source=source, input_shape=self.config.input_shape,
                             inputs=self.config.inputs, task=self.config.task,
                             dataset="digits" if source.startswith("builtin:") else "synthetic")
        except ValidationError as exc:
            raise ValueError(f"ModelOptimizer: {describe_validation_error(exc, ModelSpec)}") \
                from None
        problem = check_source(spec, Path.cwd())
        try:
            if problem is None:
                return load_model(spec, Path.cwd(), self.cache_dir)
        except SourceError as exc:
            problem = exc.problem
        allowed = f" (allowed: {problem.allowed})" if problem.allowed else ""
        raise ValueError(f"ModelOptimizer({source!r}): {problem.field}: {problem.message}"
                         f"{allowed}")

    # building ---------------------------------------------------------------------------
    def _dataset(self, calib=None, train=None, test=None):
        """A dataset of the given named arrays, the default data where none is given."""
        from harness.data import Dataset

        default = self.default_data
        train_x, train_y = train if train is not None else (None, None)
        test_x, test_y = test if test is not None else (default.test, default.test_y)
        calib = calib if calib is not None else (train_x if train_x is not None
                                                 else default.calib)
        name = f"api-{digest_of(calib, train_x, train_y, test_x, test_y)}"
        return Dataset(name=name, inputs=tuple(self.source.inputs), calib=calib,
                       test=test_x, test_y=test_y, train=train_x, train_y=train_y)

    def _data(self, data, what: str, labelled: bool = False):
        return arrays_of(data, what, self.source.inputs, labelled)

    def _loaded(self, module: torch.nn.Module | None = None):
        from harness.models import LoadedModel, weights_digest

        module = self.model if module is None else module
        if module is self.source.module:
            return self.source
        return LoadedModel(name=self.source.name, module=module,
                           input_shape=self.source.input_shape,
                           weights_digest=weights_digest(module), info=self.source.info,
                           inputs=self.source.inputs, task=self.source.task)

    def _build(self, step, fmt: str, dataset, module: torch.nn.Module | None = None, *,
               loaded=None, device: str | None = None) -> Variant:
        """Build `step` in `fmt` from `loaded` (default: the current model, or `module`),
        checked against the device it will run on (default: config.device)."""
        from harness.build.variant import VariantRequest, build_loaded
        from harness.matrix.compat import skip_reason
        from harness.matrix.schema import ModelSpec

        device = device or self.config.device
        reason = skip_reason([step], fmt, device)
        if reason:
            raise UnavailableError(reason)
        loaded = loaded if loaded is not None else self._loaded(module)
        spec = ModelSpec.model_construct(name=loaded.name,
                                         source=loaded.info.get("source", "python"),
                                         weights=None, input_shape=list(loaded.input_shape),
                                         inputs=None, task=loaded.task, dataset=dataset.name)
        request = VariantRequest(model=spec, method=step.name, steps=(step,), format=fmt,
                                 base_dir=str(Path.cwd()), cache_dir=str(self.cache_dir))
        return Variant(build_loaded(request, loaded, dataset))

    def _apply(self, step, dataset) -> torch.nn.Module:
        from harness.build.derived import apply_model_steps
        from harness.methods.context import BuildContext

        ctx = BuildContext(dataset=dataset, cache_dir=self.cache_dir,
                           input_shape=self.source.input_shape, model_name=self.source.name)
        module, report = apply_model_steps(self.model, [step], ctx)
        self.last_report = report.get(step.name, {})
        return module

    def quantize(self, method: Literal["dynamic", "static", "qat", "fp16", "bf16"] = "static",
                 calibration_data: Data | None = None, *, format: str | None = None,
                 calibration_method: Literal["minmax", "entropy", "percentile"] = "minmax",
                 symmetric: bool = True, per_channel: bool = True,
                 train_data: Data | None = None, epochs: int = 2) -> Variant:
        """An int8 (or fp16/bf16) artifact of the current model in `format` (default:
        config.format)."""
        from harness.matrix.schema import CastMethod, QatMethod, QuantizeMethod, TrainSpec

        format = format or self.config.format
        methods = ("dynamic", "static", "qat", "fp16", "bf16")
        if method not in methods:
            raise ValueError(f"quantize: method {method!r} is not known (allowed: "
                             f"{', '.join(methods)})")
        scheme = {"symmetric": symmetric, "per_channel": per_channel}
        if method in ("fp16", "bf16"):
            return self._build(CastMethod(name=method, kind="cast", dtype=method), format,
                               self._dataset())
        if method == "dynamic":
            step = _step(QuantizeMethod, "quantize", name="int8-dyn", kind="quantize",
                         mode="dynamic", scheme=scheme)
            return self._build(step, format, self._dataset())
        from agents.evalpack import samples_in

        calib, _ = self._data(calibration_data, "calibration_data")
        calibration = {"samples": samples_in(self.source.inputs, calib),
                       "method": calibration_method}
        if method == "static":
            step = _step(QuantizeMethod, "quantize", name="int8", kind="quantize",
                         mode="static", calibration=calibration, scheme=scheme)
            return self._build(step, format, self._dataset(calib=calib))
        train = self._data(train_data, "train_data", labelled=True)
        step = _step(QatMethod, "quantize", name="qat", kind="qat", calibration=calibration,
                     scheme=scheme, train=_step(TrainSpec, "quantize", epochs=epochs, lr=1e-4))
        return self._build(step, format, self._dataset(calib=calib, train=train))

    def prune(self, sparsity: float, method: str = "channel", *,
              importance: Literal["l1", "l2", "taylor"] | None = None,
              scope: Literal["layer", "global"] = "global", steps: int = 1,
              train_data: Data | None = None, finetune_epochs: int = 2,
              lr: float = 1e-3) -> torch.nn.Module:
        """Prune the current model (fine-tuned on train_data when given); it becomes the
        current model, so a later quantize() gives the chain prune -> int8.

        method: 'magnitude' / 'unstructured' zero single weights by magnitude (no dense
        speedup; the compressed size shows it); 'channel' / 'structured' / 'filter' remove
        whole filters (a smaller, faster dense model); an importance name ('l1', 'l2',
        'taylor', 'gradient' = taylor) removes filters ranked by it."""
        from harness.matrix.schema import PruneMethod, TrainSpec

        if method not in PRUNE_METHODS:
            raise ValueError(f"prune: method {method!r} is not known (allowed: "
                             f"{', '.join(PRUNE_METHODS)})")
        structure, default_importance = PRUNE_METHODS[method]
        train = self._data(train_data, "train_data", labelled=True) \
            if train_data is not None else None
        finetune = _step(TrainSpec, "prune", epochs=finetune_epochs, lr=lr) \
            if train is not None else None
        step = _step(PruneMethod, "prune", name="prune", kind="prune", structure=structure,
                     sparsity=sparsity, importance=importance or default_importance,
                     scope=scope, steps=steps, finetune=finetune)
        self.model = self._apply(step, self._dataset(train=train))
        return self.model

    def distill(self, teacher: torch.nn.Module | None, student: torch.nn.Module | str | float,
                train_data: Data, *, alpha: float = 0.7, temperature: float = 4.0,
                epochs: int = 10, lr: float = 2e-3) -> torch.nn.Module:
        """Train `student` (a module, a source such as 'builtin:digits_cnn_small', or a width
        factor of the teacher) from `teacher` (None: the current model); it becomes the
        current model. self.last_report holds teacher / distilled / student-alone top-1."""
        from harness.matrix.schema import DistillMethod, TrainSpec

        if teacher is not None and not isinstance(teacher, torch.nn.Module):
            raise TypeError(f"distill: teacher is a {type(teacher).__name__} (allowed: a "
                            f"torch.nn.Module, or None for the current model)")
        train = self._data(train_data, "train_data", labelled=True)
        if isinstance(student, torch.nn.Module):
            student_spec, module = {"source": "module:harness.api:_given_student"}, student
        elif isinstance(student, str):
            student_spec, module = {"source": student}, None
        elif isinstance(student, (int, float)) and not isinstance(student, bool):
            student_spec, module = {"width": float(student)}, None
        else:
            raise TypeError(f"distill: student is a {type(student).__name__} (allowed: a "
                            f"torch.nn.Module, a source such as 'builtin:digits_cnn', or a "
                            f"width factor in (0, 1])")
        step = _step(DistillMethod, "distill", name="distill", kind="distill",
                     student=student_spec, alpha=alpha, temperature=temperature,
                     train=_step(TrainSpec, "distill", epochs=epochs, lr=lr))
        if teacher is not None:
            self.model = copy.deepcopy(teacher).eval()
        token = _GIVEN_STUDENT.set(module)
        try:
            self.model = self._apply(step, self._dataset(train=train))
        finally:
            _GIVEN_STUDENT.reset(token)
        return self.model

    # converting -------------------------------------------------------------------------
    def convert_to_onnx(self, model: torch.nn.Module | None = None) -> Variant:
        """An fp32 ONNX artifact (opset 18, checked, parity against its torch source)."""
        from harness.matrix.schema import BaselineMethod

        if model is not None:
            self.model = copy.deepcopy(model).eval()
        return self._build(BaselineMethod(name="fp32", kind="baseline"), "onnx",
                           self._dataset())

    def convert_to_tensorrt(self, onnx_model: Variant | str | Path | torch.nn.Module | None
                            = None, precision: Literal["fp32", "fp16", "int8"] = "fp32"
                            ) -> Variant:
        """A serialized TensorRT engine for nvidia-gpu, built by TensorRT's ONNX parser from
        `onnx_model`: an ONNX Variant (convert_to_onnx's), the path of an ONNX file, a torch
        module (exported first), or None (the current model). precision: fp32, fp16
        (builder flag) or int8 (QDQ from static quantization on the calibration split).
        Raises UnavailableError naming the missing package or device: the engine is built
        on, and for, an NVIDIA GPU."""
        step, loaded = self.tensorrt_request(onnx_model, precision)
        from harness.formats import FORMATS

        reason = FORMATS["tensorrt"].unavailable()
        if reason:
            raise UnavailableError(f"convert_to_tensorrt: {reason}; the engine is built on "
                                   f"this host for device nvidia-gpu")
        from agents.devices import detect_kinds

        if "nvidia-gpu" not in detect_kinds():
            raise UnavailableError("convert_to_tensorrt: no NVIDIA GPU (nvidia-gpu) on this "
                                   "host; TensorRT builds an engine on the GPU it will run on")
        from harness.data import load_dataset

        # a file brings its own inputs: seeded synthetic data for them (fidelity only)
        dataset = (self._dataset() if loaded is None or loaded.module is not None
                   else load_dataset("synthetic", loaded.inputs))
        return self._build(step, "tensorrt", dataset, loaded=loaded, device="nvidia-gpu")

    def tensorrt_request(self, onnx_model, precision: str) -> tuple:
        """(the build step for `precision`, the model to build from: a LoadedModel, or None
        for the current model) for convert_to_tensorrt; raises on what cannot be built."""
        from harness.matrix.schema import BaselineMethod, CastMethod, QuantizeMethod
        from harness.models import LoadedModel, load_model, weights_digest

        steps = {"fp32": BaselineMethod(name="fp32", kind="baseline"),
                 "fp16": CastMethod(name="fp16", kind="cast", dtype="fp16"),
                 "int8": QuantizeMethod(name="int8", kind="quantize", mode="static",
                                        scheme={"symmetric": True,
                                                "activation_dtype": "int8"})}
        if precision not in steps:
            raise ValueError(f"convert_to_tensorrt: precision {precision!r} is not known "
                             f"(allowed: {', '.join(steps)})")
        if onnx_model is None:
            return steps[precision], None
        if isinstance(onnx_model, torch.nn.Module):
            module = copy.deepcopy(onnx_model).eval()
            return steps[precision], LoadedModel(
                name=self.source.name, module=module, input_shape=self.source.input_shape,
                weights_digest=weights_digest(module), info=self.source.info,
                inputs=self.source.inputs, task=self.source.task)
        if isinstance(onnx_model, Variant):
            if onnx_model.format != "onnx":
                raise ValueError(f"convert_to_tensorrt: the variant is in format "
                                 f"{onnx_model.format!r} (allowed: an onnx variant, e.g. "
                                 f"convert_to_onnx()'s)")
            path = onnx_model.path
        elif isinstance(onnx_model, (str, Path)):
            path = Path(onnx_model)
        else:
            raise TypeError(f"convert_to_tensorrt: onnx_model is a {type(onnx_model).__name__} "
                            f"(allowed: an onnx Variant, the path of an .onnx file, a "
                            f"torch.nn.Module, or None)")
        from harness.matrix.schema import ModelSpec
        from harness.models import check_source

        spec = ModelSpec(name=self.source.name, source=f"onnx:{path.resolve()}",
                         task=self.source.task)
        problem = check_source(spec, Path.cwd())
        if problem:
            raise ValueError(f"convert_to_tensorrt: {problem.message}")
        return steps[precision], load_model(spec, Path.cwd(), self.cache_dir)

    # measuring --------------------------------------------------------------------------
    def benchmark(self, models: Sequence | None = None, test_data: Data | None = None,
                  *, batch_sizes: Sequence[int] | None = None) -> list[dict]:
        """Measure each model in a fresh agent worker process, as a sweep does: latency
        (p50/p90/p99, CI, stop reason), memory, accuracy on labelled test_data, fidelity to
        the fp32 source. `models` holds what the other calls return: Variants (measured as
        built), torch modules and model sources such as 'builtin:digits_cnn' (each measured
        as its fp32 export in config.format; the row's `measured_as` says so). Returns one
        row per (model, batch size)."""
        from agents.cell import CellPayload
        from agents.launcher import run_cell
        from harness.build.eval_pack import eval_pack
        from harness.tasks import quality_columns

        models = list(models) if models is not None else [self.convert_to_onnx()]
        variants = [self._as_variant(m, i) for i, m in enumerate(models)]
        test = self._data(test_data, "test_data") if test_data is not None else None
        dataset = self._dataset(test=test)
        _, pack = eval_pack(self.source, dataset, self.cache_dir, self.source.task)
        measure = self.config.measure.model_dump()
        if batch_sizes:
            measure["batch_sizes"] = list(batch_sizes)
        rows = []
        for variant, measured_as in variants:
            m = variant.manifest
            cell = CellPayload.from_manifest(f"api/{m['method']}/{m['format']}/{self.config.device}",
                                             self.config.device, m | {"eval_pack": pack},
                                             measure)
            result = run_cell(cell, measure["timeout_s"])
            base = {"method": m["method"], "format": m["format"], "precision": m["precision"],
                    "size_bytes": m["size_bytes"], "measured_as": measured_as,
                    "status": result.status, "error": result.error}
            for row in result.measurements or [{}]:
                quality = quality_columns(self.source.task, row.get("metrics") or {},
                                          pack["labelled"], row.get("precision") or
                                          m["precision"], pack["reference_top1"]) \
                    if row else {}
                rows.append(base | {k: v for k, v in row.items() if k != "samples_ms"}
                            | quality)
        return rows

    def _as_variant(self, model, index: int) -> tuple[Variant, str]:
        """A benchmark entry as a built variant, and how it is measured."""
        from harness.matrix.schema import BaselineMethod

        if isinstance(model, Variant):
            return model, "the variant as built"
        fmt = self.config.format
        if isinstance(model, str):
            other = ModelOptimizer(model, self.config)
            variant = other._build(BaselineMethod(name="fp32", kind="baseline"), fmt,
                                   other._dataset(), module=other.model)
            return variant, f"fp32 export of {model} ({fmt})"
        if isinstance(model, torch.nn.Module):
            name = "original" if model is self.source.module or model is self.original \
                else f"module{index}"
            variant = self._build(BaselineMethod(name=name, kind="baseline"), fmt,
                                  self._dataset(), module=model)
            return variant, f"fp32 export of the given torch module ({fmt})"
        raise TypeError(f"benchmark: models[{index}] is a {type(model).__name__} (allowed: a "
                        f"Variant from quantize/convert_to_*, a torch.nn.Module, or a model "
                        f"source such as 'builtin:digits_cnn')")


# A student module handed to distill(): the distill method loads students by source, so the
# API names this factory, which returns the module given for the current call.
import contextvars  # noqa: E402 - kept beside its only use

_GIVEN_STUDENT: contextvars.ContextVar = contextvars.ContextVar("given_student", default=None)


def _given_student() -> torch.nn.Module:
    module = _GIVEN_STUDENT.get()
    if module is None:
        raise ValueError("module:harness.api:_given_student is only for ModelOptimizer.distill")
    return copy.deepcopy(module)

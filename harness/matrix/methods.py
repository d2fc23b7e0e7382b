"""The matrix's method configurations, and the field types the whole schema shares.

One pydantic model per method kind; `MethodSpec` tells them apart by `kind` (or `chain`).
`harness.matrix.schema` re-exports every name here: import them from there.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import (BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationInfo,
                      field_validator, model_validator)

from agents.devices import DEVICE_KINDS
from harness.formats import FORMATS
from harness.models import source_form_error

# Names become parts of file names and cell ids: keep them boring.
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
# The allowed names come from the registries: adding a format or a device kind there is
# all the schema needs.
FormatName = Literal[tuple(FORMATS)]
DeviceKind = Literal[tuple(DEVICE_KINDS)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

class CalibrationSpec(Strict):
    samples: int = Field(default=128, ge=1, le=100_000)
    method: Literal["minmax", "entropy", "percentile"] = "minmax"


class SchemeSpec(Strict):
    symmetric: bool = True
    per_channel: bool = True
    # uint8 activations x int8 weights (U8S8) is ONNX Runtime's fast path on x86 and ARM.
    activation_dtype: Literal["uint8", "int8"] = "uint8"
    # 7-bit weights, so u8 x s8 products cannot saturate the 16-bit pair sums of x86 CPUs
    # without VNNI (ONNX Runtime's reduce_range, NNCF's overflow fix). auto: true where an
    # agent of a device the variant is measured on lacks VNNI and the format's int8
    # kernels can saturate; resolved before the build, so the variant key and the stored
    # config carry true or false.
    reduce_range: Literal["auto"] | bool = "auto"


class BaselineMethod(Strict):
    name: Name
    kind: Literal["baseline"]


class QuantizeMethod(Strict):
    name: Name
    kind: Literal["quantize"]
    mode: Literal["dynamic", "static"]
    calibration: CalibrationSpec | None = Field(default=None, validate_default=True)
    scheme: SchemeSpec = SchemeSpec()

    @field_validator("calibration")
    @classmethod
    def _calibration_for_static(cls, value, info: ValidationInfo):
        mode = info.data.get("mode")
        if mode == "dynamic" and value is not None:
            raise ValueError("calibration applies to mode 'static' only")
        if mode == "static" and value is None:
            return CalibrationSpec()  # explicit default, so it is part of the variant key
        return value


class TrainSpec(Strict):
    """A short supervised training or fine-tuning run on the model's dataset's train split."""
    epochs: int = Field(default=3, ge=0, le=1000)
    lr: float = Field(default=1e-3, gt=0, le=10)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    batch_size: int = Field(default=64, ge=1, le=65_536)
    seed: int = Field(default=0, ge=0)


class CastMethod(Strict):
    """Mixed precision: weights and compute in fp16 or bf16, inputs and outputs in fp32."""
    name: Name
    kind: Literal["cast"]
    dtype: Literal["fp16", "bf16"]


class QatMethod(Strict):
    """Quantization-aware training: fake-quant fine-tuning, exported so the runtime runs int8."""
    name: Name
    kind: Literal["qat"]
    train: TrainSpec = TrainSpec(epochs=2, lr=1e-4)
    calibration: CalibrationSpec = CalibrationSpec()  # the observers' starting ranges
    # Affine activations by default: with symmetric ones ONNX Runtime cannot fuse Conv+ReLU
    # into its int8 kernels and the QAT model runs slower than fp32.
    scheme: SchemeSpec = SchemeSpec(symmetric=False)


class PruneMethod(Strict):
    name: Name
    kind: Literal["prune"]
    # unstructured: zero single weights (no dense speedup); channel: remove whole
    # filters/channels so the dense model really gets smaller and faster.
    structure: Literal["unstructured", "channel"]
    sparsity: float = Field(ge=0, lt=1)
    scope: Literal["layer", "global"] = "global"
    importance: Literal["l1", "l2", "taylor"] = "l1"
    steps: int = Field(default=1, ge=1, le=100)      # iterative schedule
    finetune: TrainSpec | None = TrainSpec()          # after every step; null: none


class StudentSpec(Strict):
    """Exactly one of: a model source (builtin:/torchvision:/module:) or a width factor
    (a copy of the teacher with that fraction of its channels, freshly initialised)."""
    source: str | None = None
    width: float | None = Field(default=None, gt=0, le=1)

    @field_validator("source")
    @classmethod
    def _source_form(cls, value: str | None) -> str | None:
        error = source_form_error(value) if value is not None else None
        if error:
            raise ValueError(error)
        return value

    @model_validator(mode="after")
    def _one_of(self) -> "StudentSpec":
        if (self.source is None) == (self.width is None):
            raise ValueError("give exactly one of source or width")
        return self


class DistillMethod(Strict):
    """Teacher (the model as it arrives) -> student; loss alpha * T^2 * KL(T) + (1 - alpha) * CE.
    The same student is also trained without the teacher, for the report."""
    name: Name
    kind: Literal["distill"]
    student: StudentSpec
    alpha: float = Field(default=0.7, ge=0, le=1)
    temperature: float = Field(default=4.0, gt=0, le=100)
    train: TrainSpec = TrainSpec(epochs=10, lr=2e-3)

    def matrix_error(self, models) -> str | None:
        """The part of "the student fits the teacher" that needs no model built:
        torchvision classifiers take 3-channel images, so a torchvision student cannot learn
        from a model whose inputs have another channel count. The rest (a builtin or module
        student's input and output shapes) is checked when the student is built."""
        source = self.student.source
        if source is None or not source.startswith("torchvision:"):
            return None
        channels = {m.name: (m.input_shape[0] if m.input_shape else DATASET_CHANNELS.get(
            m.dataset)) for m in models if m.dataset in DATASET_CHANNELS}
        if not channels or any(c in (None, 3) for c in channels.values()):
            return None  # some teacher may fit; the build checks each one
        return (f"methods[{self.name!r}].student.source: {source!r} takes 3-channel images; "
                f"the models it would distil ({', '.join(sorted(channels))}) take "
                f"{', '.join(sorted({str(c) for c in channels.values()}))}-channel inputs "
                f"(allowed: builtin:NAME or module:pkg.mod:factory students of the teacher's "
                f"input shape, or student.width)")


class NasSpace(Strict):
    widths: list[Annotated[int, Field(ge=1, le=1024)]] = Field(default=[8, 16, 32],
                                                             min_length=1, max_length=16)
    depths: list[Annotated[int, Field(ge=1, le=16)]] = Field(default=[1, 2, 3],
                                                           min_length=1, max_length=16)
    kernel_sizes: list[Literal[1, 3, 5, 7]] = Field(default=[3, 5], min_length=1)


class NasMethod(Strict):
    """Latency-aware search over a small CNN family: accuracy from short training on the
    model's dataset, latency measured on `device`'s agent in `format`. Its Pareto set
    becomes `pareto_size` variants named NAME-p1 (fastest) ... NAME-pK."""
    name: Name
    kind: Literal["nas"]
    device: DeviceKind = "intel-cpu"
    format: FormatName = "onnx"
    space: NasSpace = NasSpace()
    trials: int = Field(default=12, ge=2, le=1000)
    train: TrainSpec = TrainSpec(epochs=5, lr=1e-2)
    pareto_size: int = Field(default=3, ge=1, le=16)
    seed: int = Field(default=0, ge=0)
    member: int = Field(default=0, ge=0, le=16)  # set by expansion: which Pareto member


class ChainMethod(Strict):
    name: Name
    chain: list[Name] = Field(min_length=1, max_length=16)


def _method_tag(value: object) -> str | None:
    if isinstance(value, dict):
        return "chain" if "chain" in value else value.get("kind")
    if isinstance(value, ChainMethod):
        return "chain"
    return getattr(value, "kind", None)


# Every method config: its `kind` (the key of its entry in harness.methods.METHODS) and
# class. A new method adds its class here, and its entry there.
STEP_CONFIGS = {"baseline": BaselineMethod, "quantize": QuantizeMethod, "cast": CastMethod,
                "qat": QatMethod, "prune": PruneMethod, "distill": DistillMethod,
                "nas": NasMethod}

MethodSpec = Annotated[
    Union[tuple(Annotated[cls, Tag(kind)] for kind, cls in
                (*STEP_CONFIGS.items(), ("chain", ChainMethod)))],
    Discriminator(_method_tag),
]
StepSpec = Union[tuple(STEP_CONFIGS.values())]
METHOD_TAGS = (*STEP_CONFIGS, "chain")
# Labelled datasets that fix the input's channel count (a torchvision student needs 3)
DATASET_CHANNELS = {"digits": 1}

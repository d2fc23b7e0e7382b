"""Knowledge distillation: the model as it arrives is the teacher (frozen); a smaller student
learns from its softened outputs plus the labels. The same student, identically initialised,
is also trained on the labels alone, so the report shows what the teacher added."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from harness.methods.context import BuildContext, MethodError, MethodOutput
from harness.methods.training import top1, torch_threads, train, train_split


def apply_distill(module: nn.Module, step, ctx: BuildContext) -> MethodOutput:
    teacher = module.eval()
    (train_x, train_y), val = train_split(ctx.dataset, validation=True)
    example = torch.zeros(2, *ctx.input_shape)
    with torch_threads(ctx.threads), torch.no_grad():
        classes = teacher(example).shape[1:]
    student, described = _student(teacher, step, ctx, example)
    _check_fit(student, example, tuple(classes), described)
    alone = copy.deepcopy(student)  # identical initialisation, trained without the teacher
    distilled = train(student, (train_x, train_y), step.train, teacher=teacher,
                      alpha=step.alpha, temperature=step.temperature, threads=ctx.threads,
                      label=f"distillation of {described}")
    plain = train(alone, (train_x, train_y), step.train, threads=ctx.threads,
                  label=f"training {described} alone")

    def val_top1(m: nn.Module) -> float:
        return round(top1(m, *val, threads=ctx.threads), 5)

    from harness.methods.model_stats import params_and_macs
    with torch_threads(ctx.threads):
        teacher_params, teacher_macs = params_and_macs(teacher, example[:1])
        student_params, student_macs = params_and_macs(student, example[:1])
    report = {
        "student": described, "alpha": step.alpha, "temperature": step.temperature,
        "teacher_val_top1": val_top1(teacher), "student_distilled_val_top1": val_top1(student),
        "student_alone_val_top1": val_top1(alone), "validation_samples": int(len(val[1])),
        "teacher_params": teacher_params, "student_params": student_params,
        "teacher_macs": teacher_macs, "student_macs": student_macs,
        "training_distilled": distilled, "training_alone": plain}
    report["distillation_gain"] = round(report["student_distilled_val_top1"]
                                        - report["student_alone_val_top1"], 5)
    return MethodOutput(student.eval(), report)


def _student(teacher: nn.Module, step, ctx: BuildContext,
             example: torch.Tensor) -> tuple[nn.Module, str]:
    spec = step.student
    torch.manual_seed(step.train.seed)
    if spec.width is not None:
        return _width_student(teacher, spec.width, example), f"width {spec.width} of the teacher"
    source = spec.source
    scheme, _, rest = source.partition(":")
    try:
        with torch.no_grad():
            classes = int(teacher.eval()(example).shape[1])
        if scheme == "builtin":
            from harness.models.builtin import BUILTINS, untrained
            if rest not in BUILTINS:
                raise ValueError(f"unknown builtin model {rest!r} "
                                 f"(allowed: {', '.join(BUILTINS)})")
            student = untrained(rest)  # untrained: the student learns from scratch
        elif scheme == "torchvision":
            import torchvision
            # The classifier sized for the teacher's classes; the input must still fit.
            student = torchvision.models.get_model(rest, weights=None, num_classes=classes)
        else:
            from harness.models.module_source import build_factory
            # module: students resolve from the matrix's folder, as module: models do
            student = build_factory(rest, ctx.base_dir or Path.cwd())
    except MethodError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to build names the field
        raise MethodError(f"distill {step.name!r}: student.source {source!r} could not be "
                          f"built: {exc}") from exc
    return student, f"student.source {source!r}"


def _width_student(teacher: nn.Module, width: float, example: torch.Tensor) -> nn.Module:
    """A copy of the teacher with `width` of its channels, freshly initialised: every
    layer's channels cut uniformly with torch-pruning (the classifier keeps its classes)."""
    import torch_pruning as tp

    from harness.methods.prune import output_layers

    student = copy.deepcopy(teacher).eval()
    if width < 1:
        tp.pruner.BasePruner(
            student, example[:1], importance=tp.importance.GroupMagnitudeImportance(p=2),
            pruning_ratio=1 - width, global_pruning=False,
            ignored_layers=output_layers(student, example[:1])).step()
    for layer in student.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    return student


def _check_fit(student: nn.Module, example: torch.Tensor, classes: tuple, described: str):
    """The student must take the teacher's inputs and give outputs of the teacher's shape."""
    student.eval()
    try:
        with torch.no_grad():
            out = student(example)
    except Exception as exc:  # noqa: BLE001 - a shape error is the usual cause
        raise MethodError(f"{described} does not take the teacher's input of shape "
                          f"{list(example.shape[1:])}: {exc}") from exc
    if not isinstance(out, torch.Tensor) or tuple(out.shape[1:]) != classes:
        shape = list(out.shape[1:]) if isinstance(out, torch.Tensor) else type(out).__name__
        raise MethodError(f"{described} gives outputs of shape {shape}, the teacher "
                          f"{list(classes)}: the student must predict the teacher's classes")

"""Reading a matrix file: YAML with guards, validated by the schema, then every model
resolved as far as planning can without building it (its source, inputs, task and data),
with errors that name the file, the field path and what is allowed."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from harness.errors import InputError
from harness.matrix.schema import Matrix, ModelSpec


@dataclass
class LoadedMatrix:
    matrix: Matrix
    path: Path
    text: str
    facts: dict = field(default_factory=dict)     # model name -> harness.models.ModelFacts
    labelled: dict = field(default_factory=dict)  # model name -> its data has labels
    fixed: dict = field(default_factory=dict)     # model name -> axes its data fixes

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def shapes(self, model: str) -> list[dict]:
        """Every combination of the swept values of the named axes this model's inputs use
        ([{}] for a model without such axes)."""
        axes = self.facts[model].axes
        sweep = self.matrix.measure.shapes | {a: [v] for a, v in self.fixed[model].items()}
        values = [sweep[a] for a in axes]
        return [dict(zip(axes, combo)) for combo in itertools.product(*values)] or [{}]


def load_matrix(path: str | Path) -> LoadedMatrix:
    from harness.matrix.messages import describe_validation_error
    from harness.matrix.yaml_file import read_matrix_yaml

    path = Path(path)
    shown = str(path)
    text, data = read_matrix_yaml(path)
    if data is None:
        raise InputError("the matrix file is empty", file=shown,
                         allowed="a mapping with name, models, methods, formats, devices")
    if not isinstance(data, dict):
        raise InputError(f"the top level is a {type(data).__name__}", file=shown,
                         allowed="a mapping with name, models, methods, formats, devices")
    try:
        matrix = Matrix.model_validate(data)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc, Matrix), file=shown) from None
    loaded = LoadedMatrix(matrix=matrix, path=path.resolve(), text=text)
    check_sources(matrix, loaded.base_dir, shown)
    resolve_models(loaded, shown)
    return loaded


def check_sources(matrix: Matrix, base_dir: Path, shown: str) -> None:
    """Refuse, before anything runs, a model (or a distillation student) that cannot be
    built: an unknown architecture, a factory that does not import, is not callable or
    raises, a missing weights file, an ONNX path that is not an ONNX file, a transformers
    folder without a config. Each source checks as cheaply as it can."""
    from harness.matrix.schema import DistillMethod
    from harness.models import check_source

    for i, model in enumerate(matrix.models):
        problem = check_source(model, base_dir)
        if problem:
            raise InputError(problem.message, file=shown, field=f"models[{i}].{problem.field}",
                             allowed=problem.allowed)
    for i, method in enumerate(matrix.methods):
        if isinstance(method, DistillMethod) and method.student.source:
            student = ModelSpec.model_construct(name="student", source=method.student.source,
                                                weights=None, input_shape=None, inputs=None,
                                                task=None, dataset="synthetic")
            problem = check_source(student, base_dir)
            if problem:
                raise InputError(problem.message, file=shown,
                                 field=f"methods[{i}].student.source", allowed=problem.allowed)


def resolve_models(loaded: LoadedMatrix, shown: str) -> None:
    """Each model's inputs, task and data, and the named axes' values: a name the model does
    not have, a dynamic axis without a value, a swept axis no input uses, data that does
    not fit the inputs, a task the source cannot serve: all exit 2 here."""
    from harness.data import check_dataset, fixed_shape, is_labelled
    from harness.models import SourceError, model_facts

    matrix = loaded.matrix
    swept = matrix.measure.shapes
    used: set[str] = set()
    for i, model in enumerate(matrix.models):
        try:
            facts = model_facts(model, loaded.base_dir)
        except SourceError as exc:
            raise InputError(exc.problem.message, file=shown,
                             field=f"models[{i}].{exc.problem.field}",
                             allowed=exc.problem.allowed) from None
        problem = check_dataset(model.dataset, facts.inputs, loaded.base_dir)
        if problem:
            raise InputError(problem, file=shown, field=f"models[{i}].dataset")
        fixed = fixed_shape(model.dataset, facts.inputs, loaded.base_dir)
        for spec in facts.inputs:
            for axis in spec.axes:
                used.add(axis)
                if axis in fixed:
                    if axis in swept and swept[axis] != [fixed[axis]]:
                        raise InputError(
                            f"the data of model {model.name!r} fixes axis {axis!r} at "
                            f"{fixed[axis]}; measure.shapes.{axis} asks for {swept[axis]}",
                            file=shown, field=f"models[{i}].dataset",
                            allowed=f"synthetic data, or measure.shapes.{axis}: "
                                    f"[{fixed[axis]}]")
                elif axis not in swept:
                    raise InputError(
                        f"input {spec.name!r} has the dynamic axis {axis!r} and no value for "
                        f"it", file=shown, field=f"models[{i}].inputs.{spec.name}",
                        allowed=f"values under measure.shapes.{axis} (e.g. {{{axis}: [32, "
                                f"128]}}), or a number in place of {axis!r} in the input's "
                                f"shape")
        loaded.fixed[model.name] = fixed
        loaded.facts[model.name] = facts
        loaded.labelled[model.name] = is_labelled(model.dataset, loaded.base_dir)
    unused = [axis for axis in swept if axis not in used]
    if unused:
        axes = sorted(used) or ["(none)"]
        raise InputError(f"no input of any model has an axis {unused[0]!r}", file=shown,
                         field=f"measure.shapes.{unused[0]}",
                         allowed=f"axes the models' inputs name: {', '.join(axes)}")

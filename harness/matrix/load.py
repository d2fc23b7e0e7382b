"""Reading a matrix file: YAML with guards, validated by the schema, with errors that
name the file, the field path and what is allowed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from harness.errors import InputError
from harness.matrix.schema import Matrix, ModelSpec


@dataclass
class LoadedMatrix:
    matrix: Matrix
    path: Path
    text: str

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()



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
    check_sources(matrix, path.resolve().parent, shown)
    return LoadedMatrix(matrix=matrix, path=path.resolve(), text=text)


def check_sources(matrix: Matrix, base_dir: Path, shown: str) -> None:
    """Refuse, before anything runs, a model (or a distillation student) that cannot be
    built: an unknown architecture, a factory that does not import, is not callable or
    raises, a weights file that is missing. Each source checks as cheaply as it can."""
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
                                                weights=None, input_shape=None)
            problem = check_source(student, base_dir)
            if problem:
                raise InputError(problem.message, file=shown,
                                 field=f"methods[{i}].student.source", allowed=problem.allowed)

"""`builtin:NAME`: models that ship with the harness, trained deterministically on their own
dataset the first time they are used (cached): `digits_cnn` (harness.models.digits_cnn).
A `weights:` file replaces the training."""

from __future__ import annotations

from pathlib import Path

from harness.models.base import SourceProblem, weights_file_problem

# name -> (module, the dataset it is trained on); the modules import torch, this one does not
BUILTINS = {"digits_cnn": ("harness.models.digits_cnn", "digits")}


FORM = "builtin:NAME"
REF = "[a-z0-9_]+"  # what may follow the scheme
KIND = "module"
TASKS = ("classification",)
DEFAULT_TASK = "classification"
# name -> its one float input after the batch (known without importing torch)
INPUT_SHAPES = {"digits_cnn": (1, 32, 32)}


def inputs(name: str, spec, base_dir: Path) -> list:
    from agents.cell import specs_for
    from harness.models.base import SourceError, declared_inputs

    own = list(specs_for(INPUT_SHAPES[name]))
    given = declared_inputs(spec)
    if given is not None and [(s.dtype, s.dims) for s in given] != [(s.dtype, s.dims)
                                                                    for s in own]:
        raise SourceError(SourceProblem(
            "inputs" if spec.inputs else "input_shape",
            f"builtin:{name} takes one float32 input [batch, "
            f"{', '.join(map(str, INPUT_SHAPES[name]))}]",
            "leave input_shape and inputs out for builtin models"))
    return given or own


def check(name: str, spec, base_dir: Path) -> SourceProblem | None:
    if name not in BUILTINS:
        return SourceProblem("source", f"unknown builtin model {name!r}",
                             ", ".join(f"builtin:{n}" for n in BUILTINS))
    if spec.weights == "DEFAULT":
        return SourceProblem("weights", "DEFAULT names torchvision's pretrained weights; a "
                             "builtin model trains its own", "null or a state_dict file")
    return weights_file_problem(spec.weights, base_dir)


def untrained(name: str):
    """A freshly initialised builtin architecture (a distillation student)."""
    import importlib
    return importlib.import_module(BUILTINS[name][0]).build()


def load(name: str, spec, base_dir: Path, cache_dir: Path):
    import importlib

    module = importlib.import_module(BUILTINS[name][0])
    if spec.weights:
        from harness.models.weights import apply_weights
        model = module.build()
        info = {"source": f"builtin:{name}", **apply_weights(model, spec.weights, base_dir)}
        return model, info
    model, info = module.load_trained(Path(cache_dir))
    return model, info

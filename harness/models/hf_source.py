"""`hf:PATH_OR_ID`: a Hugging Face transformers model: a local folder (`from_pretrained`
with local_files_only), or a hub id where the hub can be reached.

The Auto class follows the model's task: classification -> AutoModelForSequenceClassification
(output: logits); embedding -> AutoModel (output: last_hidden_state); generic -> AutoModel
(every tensor output). `weights: null` builds the model from its config.json with seeded
random weights; `weights: DEFAULT` loads the folder's (or hub's) own weights; a path loads
a state_dict file. Inputs come from the matrix, or default from the config for text
models: input_ids [batch, seq] int64 in [0, vocab_size) and attention_mask [batch, seq] of
ones. The model is wrapped so it takes its inputs positionally (the matrix's order) and
returns plain tensors: what every exporter needs.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from harness.models.base import SourceError, SourceProblem

FORM = "hf:PATH_OR_ID"
REF = r"[^\s]+"
KIND = "module"
TASKS = ("classification", "embedding", "generic")
DEFAULT_TASK = "embedding"
HUB_HOST = ("huggingface.co", 443)
ALLOWED = ("hf:PATH (a folder with config.json, as save_pretrained writes it, relative to "
           "the matrix file) or hf:ORG/NAME (a hub id, where the hub can be reached)")


def _folder(ref: str, base_dir: Path) -> Path:
    path = Path(ref)
    return path if path.is_absolute() else Path(base_dir) / path


def _looks_like_hub_id(ref: str) -> bool:
    parts = ref.split("/")
    return (not ref.startswith((".", "/", "~")) and 1 <= len(parts) <= 2
            and all(p and not p.startswith(".") for p in parts))


def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def _config(ref: str, base_dir: Path) -> dict:
    folder = _folder(ref, base_dir)
    if folder.is_dir():
        return json.loads((folder / "config.json").read_text())
    from huggingface_hub import hf_hub_download

    return json.loads(Path(hf_hub_download(ref, "config.json")).read_text())


def check(ref: str, spec, base_dir: Path) -> SourceProblem | None:
    folder = _folder(ref, base_dir)
    if folder.exists():
        if not folder.is_dir():
            return SourceProblem("source", f"{folder} is not a folder", ALLOWED)
        if not (folder / "config.json").is_file():
            return SourceProblem("source", f"{folder} has no config.json (not a transformers "
                                 "model folder)", ALLOWED)
        try:
            json.loads((folder / "config.json").read_text())
        except ValueError as exc:
            return SourceProblem("source", f"{folder}/config.json is not JSON: {exc}", ALLOWED)
    elif not _looks_like_hub_id(ref):
        return SourceProblem("source", f"{folder} does not exist", ALLOWED)
    elif not _hub_reachable():
        return SourceProblem("source", f"{ref!r} is not a local folder, and the model hub "
                             f"({HUB_HOST[0]}) cannot be reached from this host", ALLOWED)
    if spec.weights and spec.weights != "DEFAULT":
        from harness.models.base import weights_file_problem
        return weights_file_problem(spec.weights, base_dir)
    return None


def inputs(ref: str, spec, base_dir: Path) -> list:
    from agents.cell import BATCH_AXIS, InputSpec
    from harness.models.base import declared_inputs

    given = declared_inputs(spec)
    if given is not None:
        return given
    config = _config(ref, base_dir)
    vocab = config.get("vocab_size")
    if not vocab:
        raise SourceError(SourceProblem(
            "inputs", f"hf:{ref} ({config.get('model_type', 'unknown type')}) has no "
            f"vocab_size: its inputs cannot be guessed", "declare them under inputs:"))
    return [InputSpec("input_ids", "int64", (BATCH_AXIS, "seq"), 0, int(vocab)),
            InputSpec("attention_mask", "int64", (BATCH_AXIS, "seq"), fill=1)]


def _auto_class(task: str):
    import transformers

    return (transformers.AutoModelForSequenceClassification if task == "classification"
            else transformers.AutoModel)


def build_wrapper():
    """A module taking the inputs positionally and returning plain tensors."""
    import torch

    class PositionalHF(torch.nn.Module):
        def __init__(self, model, names: list[str], task: str):
            super().__init__()
            self.model, self.names, self.task = model, list(names), task

        def forward(self, *args):
            out = self.model(**dict(zip(self.names, args)), return_dict=True)
            if self.task == "classification":
                return out.logits
            if self.task == "embedding":
                return out.last_hidden_state
            return tuple(v for v in out.values() if isinstance(v, torch.Tensor))

    return PositionalHF


def load(ref: str, spec, base_dir: Path, cache_dir: Path):
    import torch
    import transformers

    folder = _folder(ref, base_dir)
    local = folder.is_dir()
    where = str(folder) if local else ref
    task = spec.task or DEFAULT_TASK
    auto = _auto_class(task)
    info = {"source": f"hf:{ref}", "transformers": transformers.__version__, "task": task,
            "auto_class": auto.__name__}
    config = transformers.AutoConfig.from_pretrained(where, local_files_only=local)
    if spec.weights == "DEFAULT":
        model = auto.from_pretrained(where, local_files_only=local)
        info["weights"] = "from_pretrained"
    else:
        torch.manual_seed(0)  # deterministic random init: same digest on every host
        model = auto.from_config(config)
        info["weights"] = "random-init from config.json"
        if spec.weights:
            from harness.models.weights import apply_weights
            info.update(apply_weights(model, spec.weights, base_dir))
    info["model_type"] = config.model_type
    names = [s.name for s in inputs(ref, spec, base_dir)]
    if local and (folder / "config.json").is_file():
        import hashlib
        info["config_sha256"] = hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()
    wrapper = build_wrapper()(model.eval(), names, task)
    return wrapper, info

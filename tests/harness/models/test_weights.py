"""User weight files are data, never code: a pickle that would run something is refused
before it runs, through load_state_dict and through a matrix's model source."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest
import torch

from harness.models import load_model
from harness.models.weights import load_state_dict
from harness.matrix.schema import ModelSpec


class Payload:
    """Unpickling this calls Path.touch(marker): a stand-in for os.system."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def write_evil(path: pathlib.Path, marker: pathlib.Path, wrap=lambda p: p) -> pathlib.Path:
    torch.save(wrap(Payload(marker)), path)  # pickling calls __reduce__, not touch
    assert not marker.exists()
    return path


def test_the_payload_really_runs_code_under_a_plain_unpickler(tmp_path):
    """Proof that the file used below is malicious: without weights_only it runs."""
    marker = tmp_path / "pwned"
    path = write_evil(tmp_path / "evil.pt", marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("wrap", [
    lambda p: p,
    lambda p: {"conv.weight": torch.zeros(1), "evil": p},
    lambda p: {"state_dict": {"conv.weight": p}},
], ids=["bare", "inside-a-state-dict", "inside-a-checkpoint"])
def test_a_pickle_that_runs_code_is_refused_and_never_runs(tmp_path, wrap):
    marker = tmp_path / "pwned"
    path = write_evil(tmp_path / "evil.pt", marker, wrap)
    with pytest.raises(RuntimeError, match="refused") as info:
        load_state_dict(path)
    assert str(path) in str(info.value)
    assert "weights_only" in str(info.value)
    assert not marker.exists()


def test_a_plain_state_dict_loads(tmp_path):
    module = torch.nn.Linear(3, 2)
    path = tmp_path / "w.pt"
    torch.save(module.state_dict(), path)
    state = load_state_dict(path)
    assert set(state) == {"weight", "bias"}
    assert torch.equal(state["weight"], module.weight.detach())


def test_a_checkpoint_with_a_state_dict_entry_loads(tmp_path):
    module = torch.nn.Linear(3, 2)
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": module.state_dict(), "epoch": 3}, path)
    state = load_state_dict(path)
    assert set(state) == {"weight", "bias"}
    assert torch.equal(state["bias"], module.bias.detach())


@pytest.mark.skipif(importlib.util.find_spec("safetensors") is None,
                    reason="the optional 'safetensors' package is not installed")
def test_a_safetensors_file_loads(tmp_path):
    from safetensors.torch import save_file

    module = torch.nn.Linear(3, 2)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
    state = load_state_dict(path)
    assert set(state) == {"weight", "bias"}
    assert torch.equal(state["weight"], module.weight.detach())


def test_a_file_holding_a_tensor_is_refused_clearly(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(RuntimeError) as info:
        load_state_dict(path)
    message = str(info.value)
    assert "refused" in message and str(path) in message
    assert "holds a Tensor, not a state_dict" in message
    assert "state_dict()" in message  # says what is allowed


def test_a_dict_of_non_tensors_is_refused_clearly(tmp_path):
    path = tmp_path / "nested.pt"
    torch.save({"model": {"weight": torch.zeros(1)}}, path)
    with pytest.raises(RuntimeError, match=r"entry 'model' is a dict, not a tensor"):
        load_state_dict(path)


def test_a_matrix_model_with_evil_weights_is_refused_end_to_end(tmp_path):
    """`weights: evil.pt` next to the matrix file, through the torchvision source."""
    marker = tmp_path / "pwned"
    write_evil(tmp_path / "evil.pt", marker)
    spec = ModelSpec(name="r18", source="torchvision:resnet18", weights="evil.pt",
                     input_shape=[3, 32, 32], dataset="synthetic")
    with pytest.raises(RuntimeError, match="refused") as info:
        load_model(spec, base_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert str(tmp_path / "evil.pt") in str(info.value)
    assert not marker.exists()


def test_a_matrix_model_with_a_real_state_dict_loads_end_to_end(tmp_path):
    import torchvision

    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "r18.pt")
    spec = ModelSpec(name="r18", source="torchvision:resnet18", weights="r18.pt",
                     input_shape=[3, 32, 32], dataset="synthetic")
    loaded = load_model(spec, base_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert loaded.info["weights_file"] == str(tmp_path / "r18.pt")
    assert torch.equal(loaded.module.conv1.weight, reference.conv1.weight)

"""`torchvision:ARCH` with weights null (seeded random init, BatchNorm statistics re-estimated
on the dataset's calibration split), DEFAULT (torchvision's pretrained weights; needs the
model hub, unavailable on offline hosts) or a local state_dict file."""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

from harness.models.base import SourceProblem, weights_file_problem

INIT_SEED = 0
EXAMPLES = "for example: resnet18, mobilenet_v3_small, efficientnet_b0"


FORM = "torchvision:ARCH"
REF = "[a-z0-9_]+"  # what may follow the scheme
KIND = "module"
TASKS = ("classification",)
DEFAULT_TASK = "classification"


def inputs(arch: str, spec, base_dir: Path) -> list:
    from harness.models.base import SourceError, declared_inputs

    given = declared_inputs(spec)
    if len(given) != 1 or given[0].dtype != "float32" or given[0].batch_axis != 0:
        raise SourceError(SourceProblem(
            "inputs", f"torchvision:{arch} takes one float32 image batch [batch, C, H, W]",
            "input_shape: [C, H, W]"))
    return given

def _cache_folder() -> Path:
    return Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness"))


def architectures() -> set[str]:
    """torchvision's model names. Importing torchvision costs seconds, so the list is read
    once per torchvision version and kept in the user's cache folder: planning a matrix
    then checks names without importing torch."""
    version = metadata.version("torchvision")
    path = _cache_folder() / f"torchvision-{version}-models.json"
    try:
        return set(json.loads(path.read_text()))
    except (OSError, ValueError):
        pass
    import torchvision

    names = sorted(torchvision.models.list_models())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(names))
        tmp.replace(path)
    except OSError:
        pass  # an unwritable cache only costs the import next time
    return set(names)


def check(arch: str, spec, base_dir: Path) -> SourceProblem | None:
    if arch not in architectures():
        return SourceProblem("source", f"torchvision {metadata.version('torchvision')} has no "
                             f"model {arch!r}", f"a name of torchvision.models.list_models(); "
                             f"{EXAMPLES}")
    return weights_file_problem(spec.weights, base_dir)


def load(arch: str, spec, base_dir: Path, cache_dir: Path):
    import torch
    import torchvision

    if arch not in set(torchvision.models.list_models()):
        raise ValueError(f"torchvision has no model {arch!r} ({EXAMPLES})")
    specs = inputs(arch, spec, base_dir)
    info: dict = {"source": f"torchvision:{arch}", "torchvision": torchvision.__version__}
    if spec.weights == "DEFAULT":
        module = torchvision.models.get_model(arch, weights="DEFAULT")
        info["weights"] = "DEFAULT"
        return module, info
    torch.manual_seed(INIT_SEED)  # deterministic random init: same digest on every host
    module = torchvision.models.get_model(arch, weights=None)
    if spec.weights:
        from harness.models.weights import apply_weights
        info.update(apply_weights(module, spec.weights, base_dir))
        return module, info
    from harness.data import load_dataset
    data = load_dataset(spec.dataset, specs, base_dir)
    info["weights"] = "random-init"
    info["bn_recalibrated_samples"] = _recalibrated(module, arch, data.calib_x,
                                                    Path(cache_dir))
    return module, info


def _recalibrated(module, arch: str, calib_x, cache_dir: Path) -> int:
    """Re-estimate the BatchNorm statistics of the seeded random init on the calibration
    data, once per (architecture, versions, data): the forward passes cost a resnet18 about
    2 s on every load, i.e. on every build and every cache hit of its variants."""
    import hashlib
    import inspect

    import numpy as np
    import torch
    import torchvision

    from harness.models import batchnorm

    used = calib_x[:batchnorm.BATCH * batchnorm.BATCHES]
    h = hashlib.sha256(json.dumps({
        "arch": arch, "seed": INIT_SEED, "torch": torch.__version__,
        "torchvision": torchvision.__version__, "code": inspect.getsource(batchnorm),
        "shape": list(used.shape), "dtype": str(used.dtype)}).encode())
    h.update(np.ascontiguousarray(used).tobytes())
    path = cache_dir / "models" / f"torchvision-{arch}-bn-{h.hexdigest()[:20]}.pt"
    if path.is_file():
        try:
            module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return len(used)
        except Exception:  # noqa: BLE001 - a damaged entry is computed again
            pass
    samples = batchnorm.recalibrate_batchnorm(module, calib_x)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(module.state_dict(), tmp)
        tmp.replace(path)
    except OSError:
        pass  # an unwritable cache only costs the forward passes next time
    return samples

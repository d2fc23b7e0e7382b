"""`torchvision:ARCH` with weights null (seeded random init), DEFAULT (torchvision's
pretrained weights; needs the hub, unavailable on offline hosts) or a local file."""

from __future__ import annotations

from pathlib import Path

import torch

from harness.matrix.schema import ModelSpec

INIT_SEED = 0


def load_torchvision(arch: str, spec: ModelSpec, base_dir: Path) -> tuple[torch.nn.Module, dict]:
    import torchvision

    available = set(torchvision.models.list_models())
    if arch not in available:
        raise ValueError(f"torchvision has no model {arch!r} (for example: resnet18, "
                         "mobilenet_v3_small, efficientnet_b0)")
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
    from harness.models.batchnorm import recalibrate_batchnorm
    data = load_dataset(spec.dataset, tuple(spec.input_shape))
    info["weights"] = "random-init"
    info["bn_recalibrated_samples"] = recalibrate_batchnorm(module, data.calib_x)
    return module, info

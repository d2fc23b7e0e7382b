"""torch: a torch.export program saved as .pt2 (loads without pickle or model code)."""

from __future__ import annotations

from pathlib import Path

import torch

from harness.formats.base import Format, batch_dim


class TorchFormat(Format):
    name = "torch"
    runtime = "torch"
    devices = ("intel-cpu", "arm-edge")
    extension = ".pt2"
    options = {"export": "torch.export", "dynamic_batch": True}

    def supports(self, step) -> str | None:
        if step.kind == "quantize":
            return ("format 'torch' has no int8 realisation in this version yet "
                    "(planned: torchao dynamic / PT2E static)")
        return super().supports(step)

    def export(self, model: torch.nn.Module, example: torch.Tensor, out: Path) -> None:
        program = torch.export.export(model, (example,), dynamic_shapes=(batch_dim(),),
                                      strict=False)
        torch.export.save(program, str(out))

"""torch: a torch.export program saved as .pt2 (loads without pickle or model code).

cast fp16 / bf16: the mixed-precision model exports as it is and runs in torch eager in that
dtype (on this CPU slower than fp32: the figures show it). qat is skipped (QAT_SKIP)."""

from __future__ import annotations

from pathlib import Path

import torch

from harness.formats.base import Format, batch_dim


QAT_SKIP = ("format 'torch': qat is not realised: the torch runtime runs the converted PT2E "
            "graph in eager mode, where quantize / dequantize ops simulate int8 around float "
            "convolutions (int8 kernels need torch.compile with inductor freezing, which "
            "the torch runtime does not do)")


class TorchFormat(Format):
    name = "torch"
    runtime = "torch"
    devices = ("intel-cpu", "arm-edge", "nvidia-gpu")  # nvidia-gpu: torch CUDA agent
    extension = ".pt2"
    options = {"export": "torch.export", "dynamic_batch": True}

    def supports(self, step) -> str | None:
        if step.kind == "quantize":
            return ("format 'torch' has no int8 realisation in this version yet "
                    "(planned: torchao dynamic / PT2E static)")
        return super().supports(step)

    def supports_model_step(self, step) -> str | None:
        return QAT_SKIP if step.kind == "qat" else None

    def export(self, model: torch.nn.Module, example: torch.Tensor, out: Path) -> None:
        program = torch.export.export(model, (example,), dynamic_shapes=(batch_dim(),),
                                      strict=False)
        torch.export.save(program, str(out))

"""The Format interface: export a torch model, apply the format's own quantizer, and name the
agent runtime that runs the artifact. The build node knows this interface only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pathlib import Path
from typing import ClassVar


if TYPE_CHECKING:  # annotations only: torch is imported where it is used
    import torch


class Format:
    name: ClassVar[str]
    runtime: ClassVar[str]            # key in agents.runtimes.RUNTIMES
    devices: ClassVar[tuple[str, ...]]  # device kinds whose agents run this runtime
    extension: ClassVar[str]
    companions: ClassVar[tuple[str, ...]] = ()  # suffixes of files beside the main one
    builds_on: ClassVar[str | None] = None        # device kind the build must run on, if any
    options: ClassVar[dict] = {}      # export options; part of the variant key
    # Its runtime's int8 kernels can saturate on x86 CPUs without VNNI, and its toolchain
    # can quantize weights to 7 bits to avoid it (scheme.reduce_range).
    int8_saturation: ClassVar[bool] = False
    # It can start from an ONNX file (an onnx: source) instead of a torch module.
    from_onnx: ClassVar[bool] = False
    # It builds for the range of shapes the matrix measures (part of the variant key).
    uses_profile: ClassVar[bool] = False

    def unavailable(self) -> str | None:
        """Why this format cannot be built from this installation at all, or None."""
        return None

    def supports(self, step) -> str | None:
        """None if this format realises the format-level step, else the reason it cannot."""
        return f"format '{self.name}' has no realisation of {step.kind}"

    def reduce_range_reason(self, step) -> str | None:
        """A reduce_range: true this format has no use for (auto resolves to false)."""
        scheme = getattr(step, "scheme", None)
        if scheme is not None and scheme.reduce_range is True and not self.int8_saturation:
            return (f"format '{self.name}': reduce_range: true has no realisation: its "
                    f"runtime's int8 kernels do not saturate, so its quantizer has no 7-bit "
                    f"weight option (use reduce_range: auto or false)")
        return None

    def supports_model(self, facts) -> str | None:
        """None if this format builds from such a model (harness.models.ModelFacts: a torch
        module or a model file, its inputs and named dynamic axes), else the reason."""
        if facts.kind != "module" and not self.from_onnx:
            return (f"format '{self.name}' exports from a torch module; this model is a "
                    f"model file (formats that start from ONNX: onnx, openvino, tensorrt)")
        return None

    def supports_traits(self, traits: dict) -> str | None:
        """None if this format exports a model with these traits (harness.models.traits:
        dtype, qdq, sparsity), else the reason it cannot (e.g. a dtype its runtime has no
        kernels for). A model without traits is an ordinary fp32 torch model, which every
        format exports."""
        return None

    def runs_on(self, device: str, precision: str) -> str | None:
        """None if this format's runtime on `device` runs a variant of `precision`, else why
        not (e.g. an int8 program lowered to x86 kernels on a GPU agent)."""
        return None

    def export(self, model: torch.nn.Module, example: tuple, out: Path, spec) -> None:
        """Write the artifact of a torch module; `example` holds positional example inputs,
        `spec` (harness.formats.export_spec) the named inputs and the shape profile."""
        raise NotImplementedError

    def convert_file(self, src: Path, out: Path, spec) -> None:
        """Write the artifact of an ONNX file (formats with from_onnx)."""
        raise NotImplementedError

    def quantize(self, step, src: Path, out: Path, calib: dict, spec) -> dict:
        """Apply the format's own quantizer to the exported artifact, calibrating on
        `calib` (named arrays in the model's layout); returns what it did."""
        raise NotImplementedError

    def toolchain(self) -> dict:
        """Versions of every tool that shapes the artifact: part of the variant key."""
        import torch
        return {"torch": torch.__version__}


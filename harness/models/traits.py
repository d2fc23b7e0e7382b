"""What a model-level method's output is, as traits the formats decide by. A format never
asks which method made a model; it reads these (and, at plan time, the same traits
predicted from the method's config, harness.methods.MethodEntry.traits).

- dtype: "fp16" / "bf16" for mixed precision (fp32 inputs and outputs). Such a module also
  has `float32_twin()`: the same dtype-rounded weights in an fp32 graph, for toolchains that
  choose the compute precision themselves.
- qdq: the int8 scheme of a graph of quantize / dequantize ops around float compute (a
  fake-quant trained and converted model): {"weights": {...}, "activations": {...}}.
- sparsity: the fraction of exactly-zero weights an unstructured pruning left.

Traits travel with the module (an attribute) through the derived-model cache.
"""

from __future__ import annotations

from dataclasses import dataclass

ATTRIBUTE = "_harness_traits"


@dataclass(frozen=True)
class ModelTraits:
    dtype: str | None = None
    qdq: dict | None = None
    sparsity: float | None = None


def traits_of(module) -> ModelTraits:
    return getattr(module, ATTRIBUTE, None) or ModelTraits()


def with_traits(module, **traits):
    """Attach traits (merged with any the module already has); returns the module."""
    current = traits_of(module).__dict__ | traits
    object.__setattr__(module, ATTRIBUTE, ModelTraits(**current))
    return module

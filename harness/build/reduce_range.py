"""`scheme.reduce_range: auto`, resolved for the devices a variant is measured on.

On x86 CPUs without VNNI, int8 kernels that multiply u8 activations by s8 weights add pairs
of products in 16 bits (vpmaddubsw) and saturate for full-range weights: ONNX Runtime's
documentation names the cause and offers reduce_range (7-bit weights); NNCF applies an
"overflow fix" for the same reason. Measured here under an emulated AVX2-only CPU (qemu
-cpu Haswell), the digits CNN's static int8 ONNX model lost 5 points of top-1 that way.
The resolved value is part of the step's config, so of the variant key and of what the
database stores."""

from __future__ import annotations


def resolve(steps, format_plugin, saturating: bool) -> tuple:
    """The steps with every `reduce_range: auto` replaced by true or false: true when an
    agent of a device this variant is measured on has int8 kernels that saturate and the
    format's toolchain can avoid it."""
    resolved = []
    for step in steps:
        scheme = getattr(step, "scheme", None)
        if scheme is not None and scheme.reduce_range == "auto":
            value = bool(saturating and format_plugin.int8_saturation)
            step = step.model_copy(update={"scheme": scheme.model_copy(
                update={"reduce_range": value})})
        resolved.append(step)
    return tuple(resolved)


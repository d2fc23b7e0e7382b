"""Mixed precision (cast fp16 / bf16) on the trained digits CNN: through every format that
realises it, built on the real build path and run in the format's agent runtime; the
formats that cannot are skipped at plan time with the reason."""

from pathlib import Path

import numpy as np
import pytest
import torch

from agents.runtimes import open_session
from harness.build.variant import VariantRequest, build_variant
from harness.matrix.compat import skip_reason
from harness.methods.cast import MixedPrecision, apply_cast
from harness.models import weights_digest
from harness.matrix.schema import CastMethod, ModelSpec

DIGITS = ModelSpec(name="digits-cnn", source="builtin:digits_cnn", dataset="digits")
# digits_model and digits_ctx (a 240-sample train split) come from tests/harness/conftest.py


def cast(dtype: str) -> CastMethod:
    return CastMethod(name=f"cast-{dtype}", kind="cast", dtype=dtype)


@pytest.mark.parametrize("dtype,torch_dtype", [("fp16", torch.float16),
                                               ("bf16", torch.bfloat16)])
def test_cast_is_a_dtype_copy_with_float32_io(digits_model, digits_ctx, dtype, torch_dtype):
    digest = weights_digest(digits_model)
    out = apply_cast(digits_model, cast(dtype), digits_ctx)
    assert weights_digest(digits_model) == digest  # the source model is untouched
    assert isinstance(out.module, MixedPrecision)
    assert {p.dtype for p in out.module.parameters()} == {torch_dtype}
    x = torch.from_numpy(digits_ctx.dataset.test_x[:8])
    with torch.no_grad():
        y = out.module(x)
    assert y.dtype == torch.float32
    report = out.report
    assert report["dtype"] == dtype
    # floating tensors halve; integer buffers (batch norm counters) stay
    assert report["tensor_bytes"] < 0.51 * report["tensor_bytes_fp32"]
    assert report["torch_eager_top1_agreement"] >= 0.95
    twin = out.module.float32_twin()
    assert {p.dtype for p in twin.parameters()} == {torch.float32}
    for a, b in zip(twin.parameters(), out.module.parameters()):  # same values, exactly
        assert torch.equal(a, b.float())


@pytest.mark.parametrize("dtype,fmt,reason", [
    ("bf16", "onnx", "bfloat16"),
    ("bf16", "tflite", "bf16"),
    ("fp16", "tensorrt", None),   # skipped for TensorRT's absence or as not realised
])
def test_formats_without_the_dtype_skip_at_plan_time(dtype, fmt, reason):
    device = "nvidia-gpu" if fmt == "tensorrt" else "intel-cpu"
    why = skip_reason([cast(dtype)], fmt, device)
    assert why
    if reason:
        assert reason in why


@pytest.mark.parametrize("dtype,fmt", [("fp16", "onnx"), ("fp16", "openvino"),
                                       ("bf16", "openvino"), ("fp16", "tflite"),
                                       ("fp16", "torch"), ("bf16", "torch")])
def test_plan_keeps_the_formats_that_realise_the_dtype(dtype, fmt):
    assert skip_reason([cast(dtype)], fmt, "intel-cpu") is None


def _openvino_runs_bf16() -> bool:
    """Whether OpenVINO's CPU plugin takes a bf16 hint here: where oneDNN may use
    avx512_core or avx2_vnni_2 (intel_cpu's hasBF16HardwareSupport), natively with
    avx512_bf16 or AMX, through conversions (and slower than f32) on plain AVX-512; it runs
    the hint in f32 elsewhere. HARNESS_CPU_FLAGS with ONEDNN_MAX_CPU_ISA=AVX2 checks the
    other side on a CPU that has them."""
    import os

    from agents.devices import CPU_FLAGS_ENV, cpu_flags
    if any(f in cpu_flags() for f in ("avx512f", "avx512_bf16", "amx_bf16")):
        return True
    if os.environ.get(CPU_FLAGS_ENV) is not None:
        return False
    try:  # avx2_vnni_2: AVX-VNNI-INT8 with AVX-NE-CONVERT (not among cpu_flags' features)
        return "avx_ne_convert" in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


# Precision each runtime reports it computes in on this CPU for the variant's dtype.
# ORT and LiteRT have no fp16 conv kernels on x86 (they compute fp32 on fp16 weights);
# OpenVINO's CPU plugin runs bf16 where the ISA has it and, asked for f16 on a CPU without
# fp16 arithmetic, falls back to bf16 or f32.
COMPUTED = {("fp16", "onnx"): {"fp32", "fp16"}, ("fp16", "tflite"): {"fp32"},
            ("fp16", "openvino"): {"fp16", "bf16", "fp32"},
            ("bf16", "openvino"): {"bf16"} if _openvino_runs_bf16() else {"fp32"},
            ("fp16", "torch"): {"fp16"}, ("bf16", "torch"): {"bf16"}}


@pytest.mark.integration
@pytest.mark.parametrize("dtype,fmt", sorted(COMPUTED))
def test_cast_builds_runs_and_keeps_parity(cache_dir, dtype, fmt):
    built = build_variant(VariantRequest(model=DIGITS, method=f"cast-{dtype}",
                                         steps=(cast(dtype),), format=fmt, base_dir=".",
                                         cache_dir=str(cache_dir)))
    assert built["precision"] == dtype
    parity = built["parity"]
    assert parity["ok"], parity
    assert parity["top1_agreement"] >= 0.98
    from agents.evalpack import EvalPack
    from harness.formats import FORMATS
    pack = EvalPack(built["eval_pack"]["path"])
    session = open_session(FORMATS[fmt].runtime, built["artifact_path"], threads=1,
                           device="intel-cpu", precision=dtype)
    [out] = session.run(pack.batch(0, 16))
    assert out.dtype == np.float32 and out.shape == (16, 10)
    assert session.precision in COMPUTED[(dtype, fmt)], session.info
    if not built["cached"]:
        assert built["method_report"][f"cast-{dtype}"]["dtype"] == dtype

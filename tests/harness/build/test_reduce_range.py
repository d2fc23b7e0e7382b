"""`scheme.reduce_range: auto`: resolved from whether the agents of a variant's devices have
int8 kernels that saturate (x86 without VNNI), for the formats whose toolchain can avoid it."""

import shutil
import subprocess
import sys

import pytest

from agents import devices
from harness.build.reduce_range import resolve
from harness.cluster.connection import _saturating_kinds
from harness.cluster.connection import label
from harness.formats import FORMATS
from harness.matrix.compat import skip_reason
from harness.matrix.schema import QatMethod, QuantizeMethod

STATIC = QuantizeMethod(name="int8", kind="quantize", mode="static")


@pytest.mark.parametrize("flags, machine, saturates", [
    (["avx2", "avx512f"], "x86_64", True),                  # AVX-512 without VNNI
    (["avx2"], "x86_64", True),                              # AVX2-only EPYC / Haswell
    (["avx2", "avx512f", "avx512_vnni"], "x86_64", False),
    (["avx2", "avx_vnni"], "x86_64", False),                 # Alder Lake and later
    (["asimd", "asimddp"], "aarch64", False),
])
def test_which_cpus_saturate(flags, machine, saturates):
    assert devices.int8_saturates(flags, machine) is saturates


def test_the_flags_override_is_read(monkeypatch):
    monkeypatch.setenv(devices.CPU_FLAGS_ENV, "avx2,avx512f")
    assert devices.cpu_flags() == ["avx2", "avx512f"]
    assert devices.int8_saturates(machine="x86_64")


@pytest.mark.parametrize("fmt, saturating, expected", [
    ("onnx", True, True), ("onnx", False, False), ("openvino", True, True),
    ("torch", True, True), ("tflite", True, False), ("tensorrt", True, False)])
def test_auto_resolves_per_format_and_target(fmt, saturating, expected):
    (step,) = resolve((STATIC,), FORMATS[fmt], saturating)
    assert step.scheme.reduce_range is expected
    qat = QatMethod(name="qat", kind="qat")
    (resolved,) = resolve((qat,), FORMATS[fmt], saturating)
    assert resolved.scheme.reduce_range is expected


def test_an_explicit_value_is_kept():
    explicit = STATIC.model_copy(update={"scheme": STATIC.scheme.model_copy(
        update={"reduce_range": False})})
    assert resolve((explicit,), FORMATS["onnx"], True)[0].scheme.reduce_range is False


def test_reduce_range_true_where_nothing_saturates_is_a_skip_with_the_reason():
    explicit = STATIC.model_copy(update={"scheme": STATIC.scheme.model_copy(
        update={"reduce_range": True, "symmetric": True})})
    reason = skip_reason([explicit], "tflite", "intel-cpu")
    assert reason and "reduce_range: true has no realisation" in reason
    assert skip_reason([explicit], "onnx", "intel-cpu") is None


def test_agents_labels_name_the_saturating_kinds():
    nodes = [{"Labels": {label("int8-saturates"): "true"},
              "Resources": {"device:intel-cpu": 1, "host_slot": 1}},
             {"Labels": {label("int8-saturates"): "false"},
              "Resources": {"device:arm-edge": 1}},
             {"Labels": {label("int8-saturates"): "true"},
              "Resources": {"device:nvidia-gpu": 1}}]
    assert _saturating_kinds(nodes, None) == {"intel-cpu"}


QEMU = shutil.which("qemu-x86_64")
# top-1 of an ONNX model on an eval pack, in a process qemu runs (the benchmark's script)
from benchmarks.no_vnni_check import TOP1 as ACCURACY  # noqa: E402


@pytest.mark.integration
@pytest.mark.skipif(QEMU is None, reason="qemu-x86_64 (Debian's qemu-user) is not installed: "
                    "it emulates a CPU without VNNI for this check")
def test_auto_keeps_digits_int8_accuracy_on_a_cpu_without_vnni(cache_dir, monkeypatch,
                                                               tmp_path):
    """The static int8 digits model built for an AVX2-only agent (reduce_range resolved to
    true) keeps its accuracy when ONNX Runtime runs it on an emulated Haswell CPU, whose
    U8S8 kernels saturate; the same model with full-range weights does not."""
    from harness.build.variant import VariantRequest, build_variant
    from harness.matrix.schema import ModelSpec

    digits = ModelSpec(name="digits-cnn", source="builtin:digits_cnn", dataset="digits")

    def build(flags):
        monkeypatch.setenv(devices.CPU_FLAGS_ENV, flags)
        return build_variant(VariantRequest(model=digits, method="int8", steps=(STATIC,),
                                            format="onnx", base_dir=".",
                                            cache_dir=str(cache_dir)))

    reduced, full = build("avx2 avx512f"), build("avx2 avx512f avx512_vnni")
    assert reduced["method_config"][0]["scheme"]["reduce_range"] is True
    assert reduced["toolchain"]["quantizer"]["reduce_range"] is True
    assert full["method_config"][0]["scheme"]["reduce_range"] is False
    script = tmp_path / "accuracy.py"
    script.write_text(ACCURACY)

    def haswell_top1(variant):
        out = subprocess.run([QEMU, "-cpu", "Haswell", sys.executable, str(script),
                              variant["artifact_path"], variant["eval_pack"]["path"]],
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        return float(out.stdout.strip().splitlines()[-1])

    reference = reduced["eval_pack"]["reference_top1"]
    assert haswell_top1(reduced) >= reference - 0.01   # within 1 point of fp32
    assert haswell_top1(full) < reference - 0.01       # the saturation it avoids

"""The torch format's int8: PT2E static quantization with X86InductorQuantizer, the plan-time
skips for what it cannot realise, the source partitions a non-strict export lacks, and
(integration) the digits CNN built, checked for parity and measured through the worker,
where the torch runtime compiles it with inductor + freezing and reports int8."""

import operator

import pytest

from tests.packs import manifest_payload
import torch

from harness.matrix.schema import BaselineMethod, CalibrationSpec, ModelSpec, QuantizeMethod, SchemeSpec

DIGITS = ModelSpec(name="digits-cnn", source="builtin:digits_cnn", dataset="digits")
FP32 = BaselineMethod(name="fp32", kind="baseline")
STATIC = QuantizeMethod(name="int8", kind="quantize", mode="static")
# Batch 1 only and no accuracy pass: one inductor compile in the worker (compiles are slow).
MEASURE = {"batch_sizes": [1], "threads": 1, "warmup_s": 0.05, "min_iterations": 20,
           "min_seconds": 0.1, "max_seconds": 1.0, "ci_rel_width": 0.05, "accuracy": False,
           "timeout_s": 300}


def _static(**changes):
    return QuantizeMethod(name="q", kind="quantize", mode="static", **changes)


@pytest.mark.parametrize("steps, fragment", [
    ([STATIC], None),
    ([_static(scheme=SchemeSpec(symmetric=False))], None),
    ([QuantizeMethod(name="q", kind="quantize", mode="dynamic")], "Linear layers only"),
    ([_static(calibration=CalibrationSpec(method="entropy"))], "'entropy' is not realised"),
    ([_static(calibration=CalibrationSpec(method="percentile"))], "'percentile' is not"),
    ([_static(scheme=SchemeSpec(per_channel=False))], "per-tensor weights"),
    ([_static(scheme=SchemeSpec(activation_dtype="int8"))], "activation_dtype int8"),
])
def test_plan_time_skip_reasons(steps, fragment):
    from harness.matrix.compat import skip_reason

    reason = skip_reason(steps, "torch", "intel-cpu")
    if fragment is None:
        assert reason is None
    else:
        assert reason and fragment in reason and reason.startswith("torch:")


class _SharedRelu(torch.nn.Module):
    """resnet's pattern: one ReLU module called twice, and a residual add."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        out = self.relu(self.conv1(x))
        out = self.conv2(out)
        out += x
        return self.relu(out)


def test_restored_partitions_split_the_calls_of_a_shared_module(tmp_path):
    from torch.fx.passes.utils.source_matcher_utils import get_source_partitions

    from harness.models.dims import batch_dim
    from harness.formats.torch_format import restore_source_partitions

    x = torch.randn(2, 3, 8, 8)
    path = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(_SharedRelu().eval(), (x,),
                                          dynamic_shapes=(batch_dim(),), strict=False), path)
    graph = torch.export.load(str(path)).module()
    assert restore_source_partitions(graph) >= 5
    parts = get_source_partitions(graph.graph, [torch.nn.ReLU, torch.nn.Conv2d, operator.add])
    relus = parts.get(torch.nn.ReLU, [])
    assert len(relus) == 2 and all(len(p.output_nodes) == 1 for p in relus)
    assert len(parts[torch.nn.Conv2d]) == 2 and len(parts[operator.add]) == 1


@pytest.fixture(scope="module")
def built(cache_dir):
    from harness.build.variant import VariantRequest, build_variant
    return {name: build_variant(VariantRequest(model=DIGITS, method=name, steps=(step,),
                                               format="torch", base_dir=str(cache_dir),
                                               cache_dir=str(cache_dir)))
            for name, step in (("fp32", FP32), ("int8", STATIC))}


def _cell(manifest: dict, measure: dict = MEASURE):
    return manifest_payload(manifest, measure)


@pytest.mark.integration
def test_static_int8_is_a_smaller_pt2e_program_with_parity(built):
    int8 = built["int8"]
    assert int8["precision"] == "int8" and int8["format"] == "torch"
    assert int8["parity"]["ok"], int8["parity"]
    assert int8["parity"]["top1_agreement"] >= 0.98
    assert int8["size_bytes"] < 0.5 * built["fp32"]["size_bytes"]  # int8 weights
    q = int8["toolchain"]["quantizer"]
    assert q["quantizer"].startswith("torchao X86InductorQuantizer")
    assert q["int8_convs"].split("/")[0] == q["int8_convs"].split("/")[1] != "0"
    assert q["calibration_samples"] == 128 and q["calibration_method"] == "minmax"
    assert int8["toolchain"]["torchao"]


@pytest.mark.integration
def test_fp32_stays_eager(built):
    from agents.runtimes import open_session

    session = open_session("torch", built["fp32"]["artifact_path"], threads=1,
                           device="intel-cpu", precision="fp32")
    assert session.info["mode"] == "eager" and "compiled" not in session.info


@pytest.mark.integration
def test_the_worker_compiles_int8_and_reports_int8(built):
    from agents.launcher import run_cell

    result = run_cell(_cell(built["int8"]), timeout_s=300)
    assert result.status == "ok", result.error
    info = result.runtime
    assert info["runtime"] == "torch" and info["compiled"] == "inductor+freezing"
    compile_info = info["compile"]
    assert compile_info["int8_kernels"]["qconv"] > 0, compile_info
    # The batch-1 compile is the worker's first call: it is load time, not latency.
    assert result.load_ms >= compile_info["first_call_ms"]["1"]
    (row,) = result.measurements
    assert row["precision"] == "int8" and row["batch_size"] == 1
    assert 0 < row["latency_p50_ms"] < compile_info["first_call_ms"]["1"]

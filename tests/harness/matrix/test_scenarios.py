"""The throughput scenarios' settings: checked at plan time, with the field and what is
allowed, before anything is built."""

import pytest
from pydantic import ValidationError

from harness.matrix.schema import MeasureSpec
from tests.conftest import run_cli

MATRIX = """name: t
models: [{name: digits-cnn, source: "builtin:digits_cnn", dataset: digits}]
methods: [{name: fp32, kind: baseline}]
formats: [onnx]
devices: [intel-cpu]
measure: MEASURE
"""


def test_the_default_is_single_stream_only():
    spec = MeasureSpec()
    assert spec.scenarios == ["single_stream"] and spec.server.p99_bound_ms is None


@pytest.mark.parametrize("measure,message", [
    ({"scenarios": ["offline"]}, "single_stream is always measured"),
    ({"scenarios": ["single_stream", "server"]}, "server.p99_bound_ms"),
    ({"scenarios": ["single_stream", "offline", "offline"]}, "must not repeat"),
    ({"server": {"p99_bound_ms": 5, "rates": [10, 1]}}, "low < high"),
    ({"offline": {"min_seconds": 5, "max_seconds": 1}}, "max_seconds must be >= min_seconds"),
    ({"scenarios": ["single_stream", "multi_stream"]}, "single_stream"),
])
def test_bad_settings_are_refused_with_the_reason(measure, message):
    with pytest.raises(ValidationError, match=message):
        MeasureSpec(**measure)


def test_harness_plan_names_the_field_and_exits_2(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(MATRIX.replace("MEASURE", "{scenarios: [single_stream, server]}"))
    out = run_cli("plan", str(path))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "p99_bound_ms" in out.stderr and "m.yaml" in out.stderr
    path.write_text(MATRIX.replace("MEASURE", "{scenarios: [single_stream, server], "
                                              "server: {p99_bound_ms: 50}}"))
    assert run_cli("plan", str(path)).returncode == 0

"""Parity that could not be measured on the build host is stored as not measured."""

import numpy as np
import pytest

from agents.devices import detect_kinds
from harness.build.parity import check_parity
from harness.formats import FORMATS


@pytest.mark.skipif("nvidia-gpu" in detect_kinds(), reason="this host has an nvidia-gpu, "
                    "so TensorRT parity would be measured here")
def test_a_format_no_device_here_runs_is_not_measured_never_passed():
    plugin = FORMATS["tensorrt"]
    x = np.zeros((2, 1, 32, 32), np.float32)
    parity = check_parity("/nonexistent.engine", plugin, "fp32", x, np.zeros((2, 10)))
    assert parity["ok"] is None and parity["suspect"] is None
    assert parity["measured"] is False and "nvidia-gpu" in parity["reason"]

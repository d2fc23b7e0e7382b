"""The side-by-side measurement behind `compare --confirm`: two real ONNX models in one
fresh process, alternating blocks. What the ratios must be on a given host is checked by
benchmarks/pair_check.py, not here."""

import dataclasses

import numpy as np
import pytest

from agents.launcher import run_pair

MEASURE = {"batch_sizes": [1], "threads": 1, "warmup_s": 0.1, "accuracy": False,
           "timeout_s": 120}


def _matmul_chain(path, layers: int):
    from benchmarks.pair_check import matmul_chain
    return matmul_chain(path, layers)


def test_the_pair_measures_both_sides_in_alternating_blocks(tmp_path):
    """Structure only: how fast either side is belongs to benchmarks/pair_check.py."""
    small, big = _matmul_chain(tmp_path / "small.onnx", 2), _matmul_chain(tmp_path / "big.onnx", 16)
    result = run_pair([small, big], blocks=6, block_s=0.1, timeout_s=120)
    assert result["status"] == "ok", result.get("error")
    assert len(result["ratios"]) == 6 and all(np.isfinite(r) and r > 0 for r in result["ratios"])
    assert result["ratio"] == pytest.approx(float(np.median(result["ratios"])))
    assert len(result["p50s_ms"]) == 2 and all(p > 0 for p in result["p50s_ms"])


def test_a_tampered_artifact_fails_the_pair(tmp_path):
    good = _matmul_chain(tmp_path / "m.onnx", 2)
    bad = dataclasses.replace(good, artifact=dataclasses.replace(good.artifact,
                                                                  sha256="0" * 64))
    result = run_pair([good, bad], blocks=2, block_s=0.05, timeout_s=120)
    assert result["status"] == "failed" and "does not match its hash" in result["error"]

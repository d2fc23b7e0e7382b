"""The side-by-side measurement behind `compare --confirm`: two real ONNX models in one
fresh process, alternating blocks. What the ratios must be on a given host is checked by
benchmarks/pair_check.py, not here."""

import hashlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from agents.launcher import run_pair

MEASURE = {"batch_sizes": [1], "threads": 1, "warmup_s": 0.1, "accuracy": False,
           "timeout_s": 120}


def _matmul_chain(path, layers: int) -> dict:
    """A model of `layers` 256x256 MatMuls: cost grows with the layer count."""
    rng = np.random.default_rng(layers)
    nodes, inits, prev = [], [], "input"
    for i in range(layers):
        w = (rng.standard_normal((256, 256)) / 16).astype(np.float32)
        inits.append(onnx.numpy_helper.from_array(w, f"w{i}"))
        out = "logits" if i == layers - 1 else f"h{i}"
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [out]))
        prev = out
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["b", 256])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", 256])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, path)
    pack = path.with_suffix(".npz")
    np.savez(pack, test_x=rng.standard_normal((4, 256)).astype(np.float32))
    sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    return {"cell_id": path.stem, "device": "intel-cpu", "runtime": "onnxruntime",
            "precision": "fp32", "artifact": {"path": str(path), "sha256": sha(path)},
            "eval_pack": {"path": str(pack), "sha256": sha(pack)}, "measure": MEASURE}


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
    bad = good | {"artifact": good["artifact"] | {"sha256": "0" * 64}}
    result = run_pair([good, bad], blocks=2, block_s=0.05, timeout_s=120)
    assert result["status"] == "failed" and "does not match its hash" in result["error"]

"""Check the side-by-side measurement behind `harness compare --confirm` (agents/pair.py)
on real ONNX models: a model with eight times the work must be seen several times slower
(ratio > 3), and the same model on both sides must be even (ratio within 0.3 of 1).

These are claims about this host's speed, so they live here, not in the tests (which check
the pair's structure). Exit status 0 when both hold, 1 otherwise.

    .venv/bin/python benchmarks/pair_check.py [--blocks 6] [--block-s 0.1]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MEASURE = {"batch_sizes": [1], "threads": 1, "warmup_s": 0.1, "accuracy": False,
           "timeout_s": 120}


def matmul_chain(path: Path, layers: int) -> dict:
    """A worker cell for a model of `layers` 256x256 MatMuls: cost grows with the count."""
    import onnx
    from onnx import TensorProto, helper

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
    from agents.cell import BATCH_AXIS, CellPayload, FileRef, InputSpec
    from agents.evalpack import write_pack

    pack = path.with_suffix(".npz")
    x = rng.standard_normal((4, 256)).astype(np.float32)
    write_pack(pack, task="generic", inputs=[InputSpec("input", "float32", (BATCH_AXIS, 256))],
               shapes=[{}], test_inputs=[{"input": x}], references=None, labels=None,
               samples=len(x))
    sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    return CellPayload(cell_id=path.stem, device="intel-cpu", runtime="onnxruntime",
                       precision="fp32", artifact=FileRef(str(path), sha(path)),
                       eval_pack=FileRef(str(pack), sha(pack)), measure=MEASURE)


def main(argv: list[str] | None = None) -> int:
    from agents.launcher import run_pair

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--block-s", type=float, default=0.1)
    args = parser.parse_args(argv)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        small = matmul_chain(Path(tmp) / "small.onnx", 2)
        big = matmul_chain(Path(tmp) / "big.onnx", 16)
        for label, cells, ok in (
                ("8x the work", [small, big], lambda r: r > 3),
                ("the same model", [big, big], lambda r: abs(r - 1) <= 0.3)):
            result = run_pair(cells, args.blocks, args.block_s, timeout_s=120)
            if result["status"] != "ok":
                print(f"{label}: {result['status']}: {result.get('error')}")
                failures.append(label)
                continue
            verdict = ok(result["ratio"])
            print(f"{label:<15} candidate/baseline {result['ratio']:.3f} over "
                  f"{len(result['ratios'])} blocks (block ratios "
                  f"{min(result['ratios']):.2f}-{max(result['ratios']):.2f}): "
                  f"{'ok' if verdict else 'FAIL'}")
            if not verdict:
                failures.append(label)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

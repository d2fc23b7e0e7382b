"""The ready-made queries on a model with a swept named axis: one row per (cell, batch,
shape), each compared with the fp32 baseline of the same shape (they paired every shape
with every other: four rows a cell, speedups across sequence lengths)."""

from pathlib import Path

import numpy as np
import pytest

from harness.matrix.expand import Cell
from harness.results.store import Store

QUERIES = Path(__file__).resolve().parents[3] / "results" / "queries"
P50 = {("fp32", "seq=32"): 1.0, ("fp32", "seq=128"): 4.0,
       ("int8", "seq=32"): 0.5, ("int8", "seq=128"): 1.0}


def _manifest(method: str, kind: str) -> dict:
    return {"variant_id": f"v-{method}", "model": "bert", "method": method,
            "method_config": [{"kind": kind}], "format": "onnx",
            "precision": "fp32" if method == "fp32" else "int8", "runtime": "onnxruntime",
            "artifact_path": "/x/model.onnx", "sha256": method, "size_bytes": 1000,
            "build_seconds": 1.0, "parity": {"ok": True, "suspect": False},
            "toolchain": {"onnx": "1"}}


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "r.duckdb")
    s.start_run({"run_id": "r1", "matrix_name": "t"})
    for method, kind in (("fp32", "baseline"), ("int8", "quantize")):
        s.write_variant(_manifest(method, kind))
        rows = [{"batch_size": 1, "threads": 1, "shape": shape, "latency_p50_ms": p50,
                 "iterations": 100, "samples_ms": np.full(100, p50).tolist()}
                for (m, shape), p50 in P50.items() if m == method]
        s.write_cell("r1", Cell("bert", method, "onnx", "intel-cpu"), status="ok",
                     variant_id=f"v-{method}", measurements=rows)
    yield s
    s.close()


@pytest.mark.parametrize("name", ["method_effects.sql", "speedup_vs_fp32.sql"])
def test_each_shape_is_compared_with_the_baseline_of_that_shape(store, name):
    cur = store.con.execute((QUERIES / name).read_text())
    columns = [d[0] for d in cur.description]
    rows = [dict(zip(columns, r)) for r in cur.fetchall()]
    int8 = {r["shape"]: r["speedup"] for r in rows if r["method"] == "int8"}
    assert int8 == {"seq=32": 2.0, "seq=128": 4.0}
    assert len([r for r in rows if r["method"] == "int8"]) == 2

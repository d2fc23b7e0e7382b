"""The eval pack keeps every input's layout: samples along each input's own batch axis, and
an input without one (a scalar sample rate) fed with its rank, shape [] (runtimes refuse a
[1] for a [] input)."""

import numpy as np

from agents.cell import InputSpec
from agents.evalpack import EvalPack, write_pack

SPECS = [InputSpec("features", "float32", ("batch", 5, 3)),
         InputSpec("sample_rate", "int64", ()),
         InputSpec("state", "float32", (2, "batch", 4))]


def test_samples_and_batches_keep_each_inputs_layout(tmp_path):
    rng = np.random.default_rng(0)
    inputs = {"features": rng.standard_normal((6, 5, 3)).astype(np.float32),
              "sample_rate": np.array(16000, np.int64),
              "state": rng.standard_normal((2, 6, 4)).astype(np.float32)}
    write_pack(tmp_path / "p.npz", task="generic", inputs=SPECS, shapes=[{}],
               test_inputs=[inputs], references=[[np.zeros((6, 7), np.float32)]],
               labels=None, samples=6)
    pack = EvalPack(tmp_path / "p.npz")
    one = pack.sample(0, 4)
    assert one["features"].shape == (1, 5, 3) and one["state"].shape == (2, 1, 4)
    assert one["sample_rate"].shape == () and one["sample_rate"] == 16000
    assert np.array_equal(one["state"][:, 0], inputs["state"][:, 4])
    batch = pack.batch(0, 8)  # cycles through the 6 samples
    assert batch["features"].shape == (8, 5, 3) and batch["state"].shape == (2, 8, 4)
    assert batch["sample_rate"].shape == ()
    assert np.array_equal(batch["features"][6], inputs["features"][0])
    assert all(a.flags.c_contiguous for a in batch.values())

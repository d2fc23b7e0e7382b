"""torchvision sources with random weights: the seeded init's BatchNorm statistics are
re-estimated on the calibration data once, then read from the cache (same weights, no
forward passes)."""

from harness.matrix.schema import ModelSpec
from harness.models import batchnorm, load_model


def test_the_recalibrated_batchnorm_statistics_are_computed_once(tmp_path, monkeypatch):
    spec = ModelSpec(name="m", source="torchvision:mobilenet_v3_small",
                     input_shape=[3, 64, 64])
    first = load_model(spec, tmp_path, tmp_path / "cache")
    assert first.info["bn_recalibrated_samples"] == batchnorm.BATCH * batchnorm.BATCHES

    def forward_passes(*args, **kwargs):
        raise AssertionError("the statistics were estimated again")

    monkeypatch.setattr(batchnorm, "recalibrate_batchnorm", forward_passes)
    again = load_model(spec, tmp_path, tmp_path / "cache")
    assert again.weights_digest == first.weights_digest
    assert again.info["bn_recalibrated_samples"] == first.info["bn_recalibrated_samples"]
    # another calibration input (another image size) is another entry, estimated anew
    other = ModelSpec(name="m", source="torchvision:mobilenet_v3_small",
                      input_shape=[3, 32, 32])
    monkeypatch.undo()
    assert load_model(other, tmp_path, tmp_path / "cache").weights_digest != first.weights_digest
    assert len(list((tmp_path / "cache" / "models").glob("torchvision-*.pt"))) == 2

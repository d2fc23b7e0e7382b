"""One export per (model, model-level steps, format): every format-level method of a model
starts from the same cached export; a damaged export is redone; the cache lists and prunes
exports like variants."""

import json
import os
import time
from pathlib import Path

import pytest

from harness.build.cache import list_cache, prune_cache
from harness.build.exports import EXPORTS, RECORD, export_problem
from harness.build.variant import VariantRequest, build_variant
from harness.formats import FORMATS
from harness.matrix.schema import BaselineMethod, ModelSpec, QuantizeMethod

pytestmark = pytest.mark.integration

DIGITS = ModelSpec(name="digits-cnn", source="builtin:digits_cnn", dataset="digits")
FP32 = BaselineMethod(name="fp32", kind="baseline")
DYNAMIC = QuantizeMethod(name="int8-dyn", kind="quantize", mode="dynamic")
STATIC = QuantizeMethod(name="int8", kind="quantize", mode="static")


def build(step, cache: Path) -> dict:
    return build_variant(VariantRequest(model=DIGITS, method=step.name, steps=(step,),
                                        format="onnx", base_dir=".", cache_dir=str(cache)))


@pytest.fixture
def cache(tmp_path, cache_dir):
    """A cache of its own (exports counted from zero) that shares the trained digits model."""
    (tmp_path / "models").symlink_to(Path(cache_dir) / "models", target_is_directory=True)
    # the digits CNN trains once per session: make sure it is there
    build(FP32, Path(cache_dir))
    return tmp_path


def test_format_level_methods_share_one_export(cache, monkeypatch):
    calls = []
    plugin = FORMATS["onnx"]
    original = type(plugin).export

    def counting(self, *args, **kwargs):
        calls.append(args[2])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(plugin), "export", counting)
    built = [build(step, cache) for step in (FP32, DYNAMIC, STATIC)]
    assert len(calls) == 1  # the torch model went through the exporter once
    assert len({b["export"]["key"] for b in built}) == 1
    assert [b["export"]["cached"] for b in built] == [False, True, True]
    assert len({b["variant_id"] for b in built}) == 3
    assert [b["precision"] for b in built] == ["fp32", "int8", "int8"]
    assert all(b["parity"]["ok"] for b in built)
    # the quantizers never touched the cached file
    assert export_problem(cache / EXPORTS / built[0]["export"]["key"]) is None


def test_a_damaged_export_is_redone_and_the_cache_lists_and_prunes_exports(cache):
    first = build(FP32, cache)
    folder = cache / EXPORTS / first["export"]["key"]
    record = json.loads((folder / RECORD).read_text())
    (folder / record["file"]).write_bytes(b"not an onnx model")
    assert export_problem(folder) == "sha256 mismatch"
    listed = {e["id"]: e for e in list_cache(cache)}
    assert listed[folder.name]["kind"] == "export"
    assert listed[folder.name]["status"] == "corrupt"
    again = build(DYNAMIC, cache)
    assert again["export"] == {"key": folder.name, "cached": False}
    assert export_problem(folder) is None and again["parity"]["ok"]
    old = time.time() - 3 * 86_400
    os.utime(folder / RECORD, (old, old))
    removed = prune_cache(cache, older_than_days=2)
    assert [e["id"] for e in removed if e["kind"] == "export"] == [folder.name]
    assert not folder.exists()

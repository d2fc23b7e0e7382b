"""The variant key covers the code that produces an artifact: an edit to a method's or a
format's source (or to a harness module they import) gives a new key."""

import pytest

from harness.build import keys
from harness.build.variant import VariantRequest, artifact_modules, variant_key
from harness.matrix.schema import ModelSpec, PruneMethod, QuantizeMethod

DIGITS = ModelSpec(name="digits-cnn", source="builtin:digits_cnn", dataset="digits")
PRUNE = PruneMethod(name="slim", kind="prune", structure="channel", sparsity=0.3)
STATIC = QuantizeMethod(name="int8", kind="quantize", mode="static")


def request(steps=(PRUNE, STATIC), fmt="onnx", model=DIGITS):
    return VariantRequest(model=model, method="m", steps=tuple(steps), format=fmt,
                          base_dir="/b", cache_dir="/c")


def key(req=None, source_code=None):
    return variant_key(req or request(), "digest", {"ort": "1"}, {"opset": 18}, source_code)


@pytest.fixture
def edit(monkeypatch):
    """edit(module): the key computation now sees that module's source with one more line."""
    original = keys.source_text

    def apply(module: str):
        monkeypatch.setattr(keys, "source_text", lambda name: original(name) + (
            "\n# edited\n" if name == module else ""))
        keys.clear_digest_cache()
    yield apply
    keys.clear_digest_cache()


def test_the_modules_behind_a_variant_are_its_source_dataset_methods_and_format():
    modules = keys.code_modules(artifact_modules(request()))
    for expected in ("harness.models.builtin", "harness.data.digits", "harness.methods.prune",
                     "harness.methods.training", "harness.formats.onnx_format",
                     "harness.formats.base", "harness.build.variant"):
        assert expected in modules
    # registries and the cache's own bookkeeping are not part of it
    assert "harness.methods" not in modules and "harness.build.cache" not in modules


@pytest.mark.parametrize("module", ["harness.methods.prune", "harness.methods.training",
                                    "harness.formats.onnx_format", "harness.models.builtin",
                                    "harness.data.digits", "harness.build.variant",
                                    "agents.evalpack", "agents.arrays", "agents.cell"])
def test_an_edit_to_a_module_that_shapes_the_artifact_changes_the_key(edit, module):
    before = key()
    edit(module)
    assert key() != before


def test_an_edit_elsewhere_keeps_the_key(edit):
    before = key()
    edit("harness.formats.tflite_format")   # another format
    assert key() == before
    edit("harness.methods.distill")         # a method this chain does not use
    assert key() == before


def test_the_users_own_model_code_is_in_the_key():
    assert key(source_code="a" * 64) != key(source_code="b" * 64)


@pytest.mark.parametrize("module", ["agents.evalpack", "agents.arrays",
                                    "harness.build.eval_pack", "harness.data.synthetic"])
def test_an_edit_to_the_code_that_writes_eval_packs_gives_a_new_pack(edit, module):
    """A pack written by older code (say, one that stored a scalar input as [1]) is never
    reused by newer code."""
    from types import SimpleNamespace

    from agents.cell import InputSpec
    from harness.build.eval_pack import _key
    from harness.data import load_dataset

    specs = (InputSpec("x", "float32", ("batch", 4)), InputSpec("rate", "int64", ()))
    loaded = SimpleNamespace(weights_digest="w", inputs=specs)
    dataset = load_dataset("synthetic", specs)
    before = _key(loaded, dataset, "generic", [{}])
    assert _key(loaded, dataset, "generic", [{}]) == before
    edit(module)
    assert _key(loaded, dataset, "generic", [{}]) != before

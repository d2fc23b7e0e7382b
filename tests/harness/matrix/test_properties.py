"""Property-based tests of the matrix loader: whatever a file holds, `load_matrix` either
returns a LoadedMatrix that `expand` plans without raising, or raises InputError naming the
file. Any other exception (RecursionError, ValueError, TypeError, a hang) is a bug.

Three sources of input: arbitrary YAML-able trees keyed by the schema's own vocabulary,
mutations of a valid matrix, and raw text (bytes, YAML fragments, deep nesting).
"""

from __future__ import annotations

import copy
import math
import sys

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from harness.errors import InputError
from harness.matrix.expand import expand
from harness.matrix.load import LoadedMatrix, load_matrix
from harness.matrix.yaml_file import MAX_MATRIX_BYTES
from tests.conftest import run_cli

# Sized so the whole file runs in well under 40 s on a shared 2-core machine.
TREE_EXAMPLES = 300
MUTATION_EXAMPLES = 300
TEXT_EXAMPLES = 300
BYTES_EXAMPLES = 100
SETTINGS = dict(deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
MAX_MESSAGE = 3000  # "one paragraph": a message quoting a whole 1 MB value is a bug too

VOCAB = [
    # top level and model keys
    "name", "models", "methods", "formats", "devices", "measure", "exclude",
    "source", "weights", "input_shape", "dataset",
    # method keys
    "kind", "mode", "chain", "calibration", "scheme", "samples", "method", "symmetric",
    "per_channel", "activation_dtype",
    # measure keys
    "batch_sizes", "threads", "warmup_s", "min_iterations", "min_seconds", "max_seconds",
    "ci_rel_width", "accuracy", "timeout_s",
    # exclude keys
    "model", "format", "device",
]
VALUES = [
    "baseline", "quantize", "dynamic", "static", "qat", "minmax", "entropy", "percentile",
    "uint8", "int8", "torch", "onnx", "openvino", "tflite", "tensorrt", "intel-cpu",
    "nvidia-gpu", "arm-edge", "digits", "synthetic", "builtin:digits_cnn",
    "torchvision:resnet18", "module:pkg.mod:factory", "DEFAULT", "fp32", "int8-dyn",
    "digits-cnn",
]
NASTY_NAMES = ["../x", "a/b", "", "x" * 200, "\u00e9t\u00e9", "\u202eevil", "a b", ".",
               "..", "-x", "CON", "nul\x01", "\U0001f600", "x" * 64, "x" * 65, "a\\b"]
NASTY_NUMBERS = [0, -1, -(2**63), 2**63, 10**30, 10**300, 4097, 257, 1e308, -1e308,
                 math.inf, -math.inf, math.nan, 0.5, -0.0, 1e-320, True, False]

scalars = (st.none() | st.booleans()
           | st.integers() | st.sampled_from(NASTY_NUMBERS)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from(VALUES) | st.sampled_from(NASTY_NAMES)
           | st.text(max_size=20))
keys = (st.sampled_from(VOCAB) | st.text(max_size=12) | st.integers(-3, 3) | st.none()
        | st.booleans() | st.floats(allow_nan=False, width=16))
trees = st.recursive(
    scalars,
    lambda children: (st.lists(children, max_size=5)
                      | st.dictionaries(keys, children, max_size=7)),
    max_leaves=40)
top_level = st.dictionaries(st.sampled_from(VOCAB) | st.text(max_size=8), trees,
                            max_size=9) | trees


class _NoAliasDumper(yaml.SafeDumper):
    """Shared sub-trees would be written as anchors and aliases, which the loader refuses
    on purpose: write every node out."""

    def ignore_aliases(self, data):
        return True


def dump(tree) -> str:
    return yaml.dump(tree, Dumper=_NoAliasDumper, allow_unicode=True)


@pytest.fixture(scope="module")
def matrix_file(tmp_path_factory):
    """One file, rewritten by every example (function-scoped fixtures are not reset
    between hypothesis examples)."""
    return tmp_path_factory.mktemp("matrix-properties") / "matrix.yaml"


def check_loader(path, events: bool = True) -> LoadedMatrix | None:
    """The property: a plan, or an InputError naming the file; nothing else."""
    try:
        loaded = load_matrix(path)
    except InputError as exc:
        message = str(exc)
        assert str(path) in message, message
        assert len(message) < MAX_MESSAGE, message[:500]
        if events:
            event("InputError")  # --hypothesis-show-statistics shows the split
        return None
    if events:
        event("valid matrix")
    assert isinstance(loaded, LoadedMatrix)
    plan = expand(loaded)
    assert len(plan.cells) + len(plan.skipped) == (
        len(loaded.matrix.models) * len(loaded.matrix.methods)
        * len(loaded.matrix.formats) * len(loaded.matrix.devices))
    return loaded


# --- (a) arbitrary trees -------------------------------------------------------------

@settings(max_examples=TREE_EXAMPLES, **SETTINGS)
@given(tree=top_level)
def test_arbitrary_trees_load_or_raise_input_error(matrix_file, tree):
    matrix_file.write_text(dump(tree), encoding="utf-8")
    check_loader(matrix_file)


# --- (b) mutations of a valid matrix ----------------------------------------------------

VALID = {
    "name": "props",
    "models": [{"name": "digits-cnn", "source": "builtin:digits_cnn", "dataset": "digits"},
               {"name": "r18", "source": "torchvision:resnet18", "weights": None,
                "input_shape": [3, 64, 64], "dataset": "synthetic"}],
    "methods": [{"name": "fp32", "kind": "baseline"},
                {"name": "dyn", "kind": "quantize", "mode": "dynamic",
                 "scheme": {"symmetric": False, "per_channel": False}},
                {"name": "int8", "kind": "quantize", "mode": "static",
                 "calibration": {"samples": 64, "method": "entropy"},
                 "scheme": {"symmetric": True, "per_channel": True,
                            "activation_dtype": "int8"}},
                {"name": "both", "chain": ["fp32", "int8"]},
                {"name": "nested", "chain": ["both"]}],
    "formats": ["torch", "onnx", "tensorrt"],
    "devices": ["intel-cpu", "nvidia-gpu"],
    "measure": {"batch_sizes": [1, 8], "threads": 2, "warmup_s": 0.5, "min_iterations": 10,
                "min_seconds": 0.5, "max_seconds": 5.0, "ci_rel_width": 0.05,
                "accuracy": True, "timeout_s": 60},
    "exclude": [{"model": "r18", "format": "onnx"}, {"method": "nested"}],
}


def _slots(tree, trail=()):
    """Every (container, key) in the tree, with its path, so a mutation can hit any node."""
    out = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.append((tree, key, trail + (key,)))
            out.extend(_slots(value, trail + (key,)))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            out.append((tree, i, trail + (i,)))
            out.extend(_slots(value, trail + (i,)))
    return out


def _other_type(value):
    """Strategies for a value of another type than `value`."""
    return st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10),
        st.lists(scalars, max_size=3), st.dictionaries(keys, scalars, max_size=3),
    ).filter(lambda v: type(v) is not type(value))


MUTATIONS = ("delete", "unknown_key", "retype", "out_of_range", "nasty_name", "duplicate",
             "dangling_chain", "dangling_exclude", "replace_tree", "chain_cycle",
             # usually still valid, so expand() gets exercised too
             "shuffle", "add_chain", "add_exclude")


def mutate(draw, tree):
    op = draw(st.sampled_from(MUTATIONS))
    slots = _slots(tree)
    container, key, _ = draw(st.sampled_from(slots))
    if op == "delete":
        del container[key]
    elif op == "unknown_key":
        dicts = [tree] + [c[k] for c, k, _ in slots if isinstance(c[k], dict)]
        target = draw(st.sampled_from(dicts))
        target[draw(keys.filter(lambda k: k not in target))] = draw(scalars)
    elif op == "retype":
        container[key] = draw(_other_type(container[key]))
    elif op == "out_of_range":
        numeric = [(c, k) for c, k, _ in slots
                   if isinstance(c[k], (int, float)) and not isinstance(c[k], bool)]
        if numeric:
            container, key = draw(st.sampled_from(numeric))
        container[key] = draw(st.sampled_from(NASTY_NUMBERS) | st.integers()
                              | st.floats(allow_nan=True, allow_infinity=True))
    elif op == "nasty_name":
        named = [(c, k) for c, k, path in slots if path[-1] in ("name", "model", "method")
                 or (len(path) >= 2 and path[-2] == "chain")]
        if named:
            container, key = draw(st.sampled_from(named))
        container[key] = draw(st.sampled_from(NASTY_NAMES) | st.text(max_size=70))
    elif op == "duplicate":
        lists = [c[k] for c, k, _ in slots if isinstance(c[k], list) and c[k]]
        if lists:
            target = draw(st.sampled_from(lists))
            target.append(copy.deepcopy(draw(st.sampled_from(target))))
    elif op == "dangling_chain":
        chains = [m for m in tree.get("methods", []) if isinstance(m, dict) and "chain" in m]
        if chains and isinstance(chains[0]["chain"], list):
            chains[0]["chain"].append(draw(st.sampled_from(["nope", "fp32", "nested"])))
    elif op == "dangling_exclude":
        if isinstance(tree.get("exclude"), list):
            tree["exclude"].append({draw(st.sampled_from(["model", "method"])): "ghost"})
    elif op == "replace_tree":
        container[key] = draw(trees)
    elif op == "chain_cycle":
        methods = tree.get("methods")
        if isinstance(methods, list):
            methods.append({"name": "loop-a", "chain": ["loop-b"]})
            methods.append({"name": "loop-b", "chain": ["loop-a"]})
    elif op == "shuffle":
        lists = [c[k] for c, k, _ in slots if isinstance(c[k], list)]
        if lists:
            target = draw(st.sampled_from(lists))
            target[:] = draw(st.permutations(target))
    elif op == "add_chain":
        methods = tree.get("methods")
        if isinstance(methods, list):
            names = [m["name"] for m in methods if isinstance(m, dict) and "name" in m]
            if names:
                methods.append({"name": f"chain{len(methods)}",
                                "chain": draw(st.lists(st.sampled_from(names), min_size=1,
                                                       max_size=4))})
    elif op == "add_exclude":
        if isinstance(tree.get("exclude"), list):
            tree["exclude"].append(draw(st.fixed_dictionaries({}, optional={
                "model": st.sampled_from(["digits-cnn", "r18"]),
                "method": st.sampled_from(["fp32", "dyn", "int8", "both", "nested"]),
                "format": st.sampled_from(["torch", "onnx", "tensorrt", "tflite"]),
                "device": st.sampled_from(["intel-cpu", "nvidia-gpu", "arm-edge"])})))


@st.composite
def mutated_matrices(draw):
    tree = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        if not _slots(tree):
            break
        mutate(draw, tree)
    return tree


def test_the_unmutated_matrix_is_valid(matrix_file):
    matrix_file.write_text(dump(VALID))
    loaded = check_loader(matrix_file, events=False)
    assert loaded is not None and loaded.matrix.steps("nested")


@settings(max_examples=MUTATION_EXAMPLES, **SETTINGS)
@given(tree=mutated_matrices())
def test_mutated_matrices_load_or_raise_input_error(matrix_file, tree):
    matrix_file.write_text(dump(tree), encoding="utf-8")
    check_loader(matrix_file)


# --- (c) raw text ------------------------------------------------------------------------

FRAGMENTS = [
    "name: ", "models:", "methods:", "- ", "  ", "\n", ": ", "? ", "[", "]", "{", "}", ",",
    "&a ", "*a ", "&b [*a, *a]", "<<: ", "<<: *a", "---\n", "...\n", "%YAML 1.1\n",
    "%TAG ! tag:x,2000:\n", "'", '"', "# c\n", "|\n", ">-\n", "\t", "!!int ", "!!float ",
    "!!timestamp ", "!!binary ", "!!set ", "!!omap ", "!!python/object/apply:os.system ",
    "!foo ", "1e999", ".nan", "-.inf", "0x1F", "0o17", "1_000", "190:20:30", "2001-13-45",
    "2001-12-14t21:59:43.10-05:00", "~", "null", "yes", "NO", "\"\\ud800\"", "\"\\x00\"",
    "\ufeff", "\u2028", "\x85", "9" * 5000, "kind: baseline", "chain: [", "- {name: a, ",
    "source: builtin:digits_cnn", "devices: [intel-cpu]", "formats: [onnx]",
]
raw_texts = st.one_of(
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", errors="replace")),
    st.text(max_size=200),
    st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=5), max_size=40).map("".join),
    st.tuples(st.integers(1, 5000), st.sampled_from(["[", "{a: ", "- ", "{", "[{a: "]),
              st.booleans()).map(lambda t: t[1] * t[0] + ("]" * t[0] if t[2] else "")),
)


@settings(max_examples=TEXT_EXAMPLES, **SETTINGS)
@given(text=raw_texts)
@example(text="[" * 5000)
@example(text="{a: " * 3000 + "1" + "}" * 3000)
@example(text="name: 2001-13-45\n")
@example(text="name: !!int abc\n")
@example(text="measure: {threads: " + "9" * 5000 + "}\n")
@example(text="!!int")  # empty scalar: IndexError inside PyYAML
def test_raw_text_loads_or_raises_input_error(matrix_file, text):
    matrix_file.write_text(text, encoding="utf-8", errors="surrogatepass")
    check_loader(matrix_file)


@settings(max_examples=BYTES_EXAMPLES, **SETTINGS)
@given(blob=st.binary(max_size=500))
def test_raw_bytes_load_or_raise_input_error(matrix_file, blob):
    matrix_file.write_bytes(blob)
    check_loader(matrix_file)


# --- regressions: inputs that used to crash the loader --------------------------------

BODY = ("models: [{name: m, source: 'builtin:digits_cnn', dataset: digits}]\n"
        "formats: [onnx]\ndevices: [intel-cpu]\n")


def _doubling_chains(levels: int) -> str:
    methods = ["{name: c0, kind: baseline}"] + [
        f"{{name: c{i}, chain: [c{i - 1}, c{i - 1}]}}" for i in range(1, levels)]
    return "name: t\n" + BODY + "methods: [" + ", ".join(methods) + "]\n"


def _deep_chains(levels: int, reverse: bool) -> str:
    methods = ["{name: c0, kind: baseline}"] + [
        f"{{name: c{i}, chain: [c{i - 1}]}}" for i in range(1, levels)]
    if reverse:
        methods.reverse()
    return "name: t\n" + BODY + "methods: [" + ", ".join(methods) + "]\n"


CRASHES = {
    # was RecursionError in PyYAML's recursive composer
    "deep-flow-list": ("[" * 5000, "nesting deeper than"),
    "deep-flow-map": ("{a: " * 3000 + "1" + "}" * 3000, "nesting deeper than"),
    "deep-block-list": ("".join("  " * i + "-\n" for i in range(400)), "nesting deeper than"),
    # were ValueError / AttributeError escaping from PyYAML's scalar constructors
    "impossible-date": ("name: 2001-13-45\n" + BODY, "cannot read '2001-13-45' as !!timestamp"),
    "explicit-int-tag": ("name: !!int abc\n" + BODY, "cannot read 'abc' as !!int"),
    "explicit-float-tag": ("name: !!float abc\n" + BODY, "as !!float"),
    "explicit-timestamp-tag": ("name: !!timestamp abc\n" + BODY, "as !!timestamp"),
    "int-over-4300-digits": ("name: t\n" + BODY + "methods: [{name: f, kind: baseline}]\n"
                             "measure: {threads: " + "9" * 5000 + "}\n", "4300 digits"),
    # was an exponential expansion (2**40 steps: a hang) in Matrix.steps
    "doubling-chains": (_doubling_chains(40), "expands to more than 64 steps"),
    # would exhaust the stack in Matrix.steps when declared deepest-first
    "deep-chains": (_deep_chains(900, reverse=True), "chains nest deeper than 16"),
    # were accepted or rejected depending on declaration order
    "deep-chains-in-order": (_deep_chains(900, reverse=False), "chains nest deeper than 16"),
    # were messages of 700 kB quoting the whole value back
    "huge-value-quoted": ("name: t\n" + BODY + "methods: [{name: f, kind: ["
                          + ",".join(["xxxxxxxxxx"] * 50000) + "]}]\n", "needs 'kind'"),
    "huge-name-quoted": ("name: " + "x" * 900_000 + "\n" + BODY, "is not a valid name"),
    "huge-tag-quoted": ("name: !" + "x" * 900_000 + " t\n" + BODY, "not valid YAML"),
    # were "[1]: Keys should be strings" (a bool key shown as an index)
    "non-text-key": ("name: t\ntrue: 1\n" + BODY, "key True is not text"),
    # a 2M-cell matrix would take minutes and gigabytes to plan
    "too-many-cells": ("name: t\nmodels: [" + ", ".join(
        f"{{name: m{i}, source: 'builtin:digits_cnn'}}" for i in range(500)) + "]\nmethods: ["
        + ", ".join(f"{{name: f{i}, kind: baseline}}" for i in range(500))
        + "]\nformats: [onnx, torch]\ndevices: [intel-cpu]\n", "at most 10000"),
}


@pytest.mark.parametrize("name", sorted(CRASHES))
def test_former_crashes_are_input_errors(tmp_path, name):
    text, fragment = CRASHES[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    assert path.stat().st_size <= MAX_MATRIX_BYTES
    with pytest.raises(InputError) as info:
        load_matrix(path)
    message = str(info.value)
    assert str(path) in message and fragment in message, message[:500]
    assert len(message) < MAX_MESSAGE
    assert sys.getrecursionlimit() >= 1000  # nothing lowered it to pass


def test_sixteen_nested_chains_are_fine_in_any_order(tmp_path):
    for reverse in (False, True):
        path = tmp_path / f"chains-{reverse}.yaml"
        path.write_text(_deep_chains(17, reverse=reverse))  # c16 nests 16 levels
        loaded = load_matrix(path)
        assert [s.name for s in loaded.matrix.steps("c16")] == ["c0"]
        expand(loaded)


# --- the CLI on nasty files: exit 2, a message, no traceback ----------------------------

def test_cli_plan_refuses_nasty_files_without_a_traceback(tmp_path):
    laughs = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"] + [
        f"{chr(ord('b') + i)}: &{chr(ord('b') + i)} [{', '.join(['*' + chr(ord('a') + i)] * 9)}]"
        for i in range(8)]
    files = {
        "laughs.yaml": "\n".join(laughs) + "\n",
        "deep.yaml": "[" * 5000 + "]" * 5000 + "\n",
        "big.yaml": "name: t\n" + "# padding\n" * 210_000,  # about 2 MB
    }
    for name, text in files.items():
        path = tmp_path / name
        path.write_text(text)
        out = run_cli("plan", str(path), timeout=60)
        assert out.returncode == 2, (name, out.returncode, out.stderr[-2000:])
        assert "Traceback" not in out.stderr, out.stderr[-2000:]
        assert str(path) in out.stderr, out.stderr
    assert (tmp_path / "big.yaml").stat().st_size > 2_000_000

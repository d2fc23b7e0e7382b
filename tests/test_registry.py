"""Every registered format and runtime either imports or names what is missing, and
importing the harness pulls in no heavy toolchain (they load inside the functions)."""

import importlib
import subprocess
import sys

import pytest

from agents.runtimes import RUNTIMES
from harness.formats import FORMATS
from harness.methods import METHODS
from harness.matrix.schema import METHOD_TAGS

HEAVY = ("openvino", "nncf", "tensorrt", "litert_torch", "ai_edge_litert", "ai_edge_quantizer",
         "tensorflow", "torchao", "torch_pruning", "optuna")


def test_importing_the_harness_imports_no_heavy_toolchain():
    code = ("import sys, harness.cli, harness.matrix.schema, harness.formats, harness.matrix.compat, "
            "agents.runtimes, agents.worker; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_each_runtime_imports_or_names_the_missing_package(name):
    try:
        module = importlib.import_module(RUNTIMES[name][0])
    except ImportError as exc:  # only acceptable for hardware toolchains not installed here
        assert exc.name and exc.name.split(".")[0] in ("tensorrt",), exc
        return
    assert callable(module.open_session)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_each_format_reports_availability_and_its_runtime(name):
    plugin = FORMATS[name]
    assert plugin.runtime in RUNTIMES and plugin.devices
    reason = plugin.unavailable()
    if reason is None:
        assert isinstance(plugin.toolchain(), dict)
    else:
        assert name in reason or "tensorrt" in reason


def test_every_method_kind_of_the_schema_is_registered():
    assert set(METHOD_TAGS) - {"chain"} == set(METHODS)


@pytest.mark.parametrize("kind", sorted(k for k, e in METHODS.items() if e.level == "model"))
def test_each_model_level_method_function_imports(kind):
    entry = METHODS[kind]
    for extra in entry.extras:
        importlib.import_module(extra)  # a declared dependency: installed with the harness
    assert callable(entry.apply())

"""The package layers, enforced (../shared/DESIGN.md, Boundaries):

- harness.matrix and harness.results import neither torch nor Ray;
- only harness.cluster imports Ray;
- agents imports none of Ray, DuckDB or harness, and torch only in the runtimes that run
  torch programs (torch, torch CUDA, TensorRT's CUDA buffers), so a device that cannot
  run Ray or torch can still be measured.

Imports inside functions count (the harness imports heavy toolchains lazily), so this reads
every import statement of every module, not only what importing them loads; a second
check imports the planning path and the results tools in a fresh interpreter and looks at
what got loaded."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

TORCH_RUNTIMES = {"agents/runtimes/torch_rt.py", "agents/runtimes/torch_cuda_rt.py",
                  "agents/runtimes/torch_io.py", "agents/runtimes/tensorrt_rt.py",
                  "agents/runtimes/torch_profile.py"}


def imports(path: Path) -> set[str]:
    """Top-level package names of every import in the file, at any depth."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def modules(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("folder", ["harness/matrix", "harness/results"])
def test_matrix_and_results_import_neither_torch_nor_ray(folder):
    bad = {rel(p): imports(p) & {"torch", "ray"} for p in modules(folder)}
    assert not {k: v for k, v in bad.items() if v}


def test_only_the_cluster_package_imports_ray():
    outside = [p for p in modules("harness") if "harness/cluster/" not in rel(p)]
    assert [rel(p) for p in outside if "ray" in imports(p)] == []


def test_agents_import_neither_ray_duckdb_nor_harness_and_torch_only_in_torch_runtimes():
    problems = {}
    for path in modules("agents"):
        found = imports(path) & {"ray", "duckdb", "harness", "torch"}
        if rel(path) in TORCH_RUNTIMES:
            found -= {"torch"}
        if found:
            problems[rel(path)] = found
    assert problems == {}


@pytest.mark.parametrize("matrix, loaded", [
    ("smoke.yaml", "[]"),
    # edge.yaml names two ONNX files: their graphs' inputs are read at plan time (onnx, a
    # protobuf reader), and nothing heavier
    ("edge.yaml", "['onnx']")])
def test_planning_and_the_results_tools_load_no_torch_and_no_ray(matrix, loaded,
                                                                 shipped_models):
    code = """
import sys
from harness.matrix.load import load_matrix
from harness.matrix.expand import expand
import harness.results.report, harness.results.compare, harness.results.query
import harness.results.recommend, harness.results.summary
plan = expand(load_matrix(sys.argv[1]))
assert plan.cells
print(sorted(m for m in ("torch", "ray", "torchvision", "onnx", "openvino", "transformers")
             if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code, str(REPO / "matrix" / matrix)],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == loaded


def _module_graph() -> dict[str, set[str]]:
    """harness and agents modules -> the ones they import (at any depth)."""
    names = {}
    for path in modules("harness") + modules("agents"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        names[name] = path
    graph = {}
    for name, path in names.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                deps.add(node.module)
                deps.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
        graph[name] = {d for d in deps if d in names and d != name}
    return graph


def test_no_module_imports_itself_round_a_cycle():
    graph = _module_graph()
    cycles = []
    for start in graph:
        seen, todo = set(), list(graph[start])
        while todo:
            name = todo.pop()
            if name == start:
                cycles.append(start)
                break
            if name not in seen:
                seen.add(name)
                todo.extend(graph[name])
    assert cycles == []


def test_formats_decide_from_traits_and_never_import_the_methods():
    graph = _module_graph()
    assert {m: sorted(d for d in deps if d.startswith("harness.methods"))
            for m, deps in graph.items()
            if m.startswith("harness.formats") and any(d.startswith("harness.methods")
                                                       for d in deps)} == {}

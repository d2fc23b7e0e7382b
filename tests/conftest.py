import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MATRIX_DIR = REPO / "matrix"


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """One artifact cache for the whole session (the digits CNN trains once, ~35 s). Kept
    under results/ so a developer's repeated runs reuse it; CI starts from a fresh clone."""
    path = Path(os.environ.get("HARNESS_TEST_CACHE", REPO / "results" / "cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_cli(*args: str, timeout: float = 600, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """The CLI as a user runs it: a separate process, so exit codes and output are real."""
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def model_files(tmp_path_factory, cache_dir) -> Path:
    """Models as users bring them, made small in a temporary folder (examples/make_models.py
    makes the full-size ones edge.yaml measures): tiny-bert/ (a transformers folder: one
    layer, hidden 32, vocabulary 100, 3 labels), speech_kws.onnx (three named inputs: a
    scalar int64, a state with the batch second) and digits_cnn.onnx (the trained digits
    CNN)."""
    from examples.make_models import make_digits_onnx, make_speech_kws, make_tiny_bert

    folder = tmp_path_factory.mktemp("models")
    make_tiny_bert(folder / "tiny-bert", layers=1, hidden=32, heads=2, vocab=100,
                   max_positions=128)
    make_speech_kws(folder / "speech_kws.onnx")
    make_digits_onnx(folder / "digits_cnn.onnx", cache_dir)
    return folder


@pytest.fixture(scope="session")
def shipped_models(cache_dir) -> Path:
    """matrix/models/, as `make models` makes it: edge.yaml names these files."""
    from examples.make_models import main

    main([str(MATRIX_DIR / "models")], cache=cache_dir)
    return MATRIX_DIR / "models"

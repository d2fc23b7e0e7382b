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

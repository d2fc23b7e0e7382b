"""Ctrl-C or SIGTERM mid-sweep: exit 130, the run marked interrupted, the database
consistent (every stored cell whole)."""

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import MATRIX_DIR, REPO, run_cli

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_sweep_leaves_a_consistent_database(tmp_path, cache_dir, sig):
    db = tmp_path / "r.duckdb"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "sweep",
                             str(MATRIX_DIR / "smoke.yaml"), "--db", str(db), "--cache",
                             str(cache_dir)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    for line in proc.stdout:  # the first cell is stored: the sweep is under way, Ray is up
        if line.startswith(("ok ", "failed ")) or time.monotonic() > deadline:
            break
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "Traceback" not in output
    runs = json.loads(run_cli("query", "select status, finished_at from runs", "--db", str(db),
                              "--format", "json").stdout)
    assert runs == [{"status": "interrupted", "finished_at": runs[0]["finished_at"]}]
    assert runs[0]["finished_at"]
    partial = json.loads(run_cli(
        "query", "select c.cell_id, count(m.batch_size) as n from cells c left join "
        "measurements m using (run_id, cell_id) where c.status = 'ok' group by all",
        "--db", str(db), "--format", "json").stdout)
    assert all(r["n"] == 2 for r in partial), partial  # an ok cell always has both batches

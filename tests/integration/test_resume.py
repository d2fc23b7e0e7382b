"""kill -9 of the coordinator mid-sweep loses no finished cell, and --resume completes the
rest exactly once."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import MATRIX_DIR, REPO, run_cli

pytestmark = pytest.mark.integration
SMOKE = str(MATRIX_DIR / "smoke.yaml")


def query(db, sql):
    out = run_cli("query", sql, "--db", str(db), "--format", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_kill_9_then_resume_leaves_exactly_one_result_per_cell(tmp_path, cache_dir):
    db = tmp_path / "r.duckdb"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "sweep", SMOKE, "--db",
                             str(db), "--cache", str(cache_dir)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    run_id, finished, deadline = None, 0, time.monotonic() + 300
    for line in proc.stdout:
        if line.startswith("run ") and run_id is None:
            run_id = line.split()[1].rstrip(":")
        if line.startswith("ok "):
            finished += 1
        if finished >= 2 or time.monotonic() > deadline:
            break
    assert run_id and finished >= 2
    os.kill(proc.pid, signal.SIGKILL)  # the coordinator only, mid-sweep
    proc.wait(timeout=30)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # clean up the Ray node it had started
    except ProcessLookupError:
        pass

    before = query(db, f"select status from runs where run_id = '{run_id}'")
    assert before == [{"status": "running"}]  # nobody got to mark it
    kept = query(db, f"select count(*) as n from cells where run_id = '{run_id}' "
                     "and status = 'ok'")[0]["n"]
    assert kept >= 2

    out = run_cli("sweep", SMOKE, "--db", str(db), "--cache", str(cache_dir), "--resume",
                  run_id, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"({kept} already done)" in out.stdout

    per_cell = query(db, f"select cell_id, status, count(*) as n from cells "
                         f"where run_id = '{run_id}' group by all")
    assert len(per_cell) == 6 and all(r["n"] == 1 for r in per_cell)
    assert {r["status"] for r in per_cell} == {"ok", "skipped"}
    rows = query(db, f"""select m.cell_id, m.batch_size, m.iterations, count(s.iteration) as n
                        from measurements m join latency_samples s using (run_id, cell_id,
                        batch_size) where run_id = '{run_id}' group by all""")
    assert len(rows) == 8 and all(r["n"] == r["iterations"] for r in rows)
    assert query(db, "select count(*) as n from runs")[0]["n"] == 1
    assert query(db, f"select status from runs where run_id = '{run_id}'") == [{"status": "ok"}]


def test_resume_refuses_an_unknown_run_and_a_changed_matrix(tmp_path, cache_dir):
    db = tmp_path / "r.duckdb"
    out = run_cli("sweep", SMOKE, "--db", str(db), "--resume", "nope")
    assert out.returncode == 2 and "no run 'nope'" in out.stderr

    from harness.results.store import Store
    store = Store(db)
    store.start_run({"run_id": "smoke-old", "matrix_name": "smoke", "matrix_hash": "0" * 64})
    store.close()
    out = run_cli("sweep", SMOKE, "--db", str(db), "--resume", "smoke-old")
    assert out.returncode == 2 and "different version of this matrix" in out.stderr
    assert "Traceback" not in out.stderr

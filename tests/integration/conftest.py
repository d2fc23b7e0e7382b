import json

import pytest

from tests.conftest import MATRIX_DIR, run_cli

SMOKE = str(MATRIX_DIR / "smoke.yaml")


def query(db, sql):
    out = run_cli("query", sql, "--db", str(db), "--format", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="session")
def swept(tmp_path_factory, cache_dir):
    """Two sweeps of matrix/smoke.yaml into one database: (db, [run1, run2], first output)."""
    db = tmp_path_factory.mktemp("sweep") / "a.duckdb"
    first = run_cli("sweep", SMOKE, "--db", str(db), "--cache", str(cache_dir), timeout=900)
    assert first.returncode == 0, first.stdout + first.stderr
    second = run_cli("sweep", SMOKE, "--db", str(db), "--cache", str(cache_dir), "--tag",
                     "again", timeout=900)
    assert second.returncode == 0, second.stdout + second.stderr
    runs = query(db, "select run_id from runs order by started_at")
    return db, [r["run_id"] for r in runs], first

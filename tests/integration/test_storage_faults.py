"""A full disk, read-only folders and a second process on the same database: clear errors
(exit 2, no traceback), nothing already written is lost."""

import os
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, run_cli
from tests.integration.conftest import SMOKE, query
from tests.integration.sockets import listening_once_up, not_on_loopback

pytestmark = pytest.mark.integration


@pytest.fixture
def mount_tmpfs(tmp_path):
    """Mount a small tmpfs (needs root, as in CI here); skipped where mounting is refused."""
    mounted = []

    def mount(name: str, options: str):
        point = tmp_path / name
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): needs root")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def test_full_disk_stops_the_sweep_clearly_and_keeps_written_cells(mount_tmpfs, cache_dir):
    disk = mount_tmpfs("full", "size=150K")
    db = disk / "r.duckdb"
    out = run_cli("sweep", SMOKE, "--db", str(db), "--cache", str(cache_dir), timeout=600)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "No space left on device" in out.stderr and "--resume" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    runs = query(db, "select status from runs")
    assert runs == [{"status": "interrupted"}]  # resumable, and not picked by tag:NAME
    cells = query(db, "select cell_id, status from cells")
    measured = query(db, "select distinct cell_id from measurements")
    assert {c["cell_id"] for c in cells if c["status"] == "ok"} == {m["cell_id"] for m in measured}


def test_read_only_database_folder(mount_tmpfs, cache_dir):
    folder = mount_tmpfs("ro", "ro,size=1M")
    out = run_cli("sweep", SMOKE, "--db", str(folder / "r.duckdb"), "--cache", str(cache_dir))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "r.duckdb" in out.stderr and "Read-only file system" in out.stderr, out.stderr


def test_read_only_cache_folder(mount_tmpfs, tmp_path):
    folder = mount_tmpfs("rocache", "ro,size=1M")
    out = run_cli("sweep", SMOKE, "--db", str(tmp_path / "r.duckdb"), "--cache", str(folder))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "cannot write to the artifact cache folder" in out.stderr, out.stderr
    assert not (tmp_path / "r.duckdb").exists()  # refused before a run was recorded


def test_a_second_sweep_and_a_query_during_a_sweep_fail_clearly(tmp_path, cache_dir):
    db = tmp_path / "r.duckdb"
    # Ray's default (RAY_AUTH_MODE unset): token auth on, and Ray says so (with --verbose:
    # the sweep hides Ray's own lines otherwise). Tests that join clusters set the mode in
    # this process's environment; the user's shell does not.
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    first = subprocess.Popen([sys.executable, "-m", "harness.cli", "sweep", SMOKE, "--db",
                              str(db), "--cache", str(cache_dir), "--verbose"], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    seen = []
    for line in first.stdout:  # the first sweep holds the writer lock from here on
        seen.append(line)
        if "cells to measure" in line or time.monotonic() > deadline:
            break
    second = run_cli("sweep", SMOKE, "--db", str(db), "--cache", str(cache_dir))
    during = run_cli("query", "select count(*) from cells", "--db", str(db))
    listeners = listening_once_up(first.pid)
    rest, _ = first.communicate(timeout=600)
    rest = "".join(seen) + rest
    assert first.returncode == 0, rest
    for out in (second, during):
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert "in use by another process" in out.stderr, out.stderr
    assert query(db, "select count(*) as n from runs") == [{"n": 1}]
    assert query(db, "select count(*) as n from cells where status = 'ok'") == [{"n": 4}]
    # The embedded Ray node listens on loopback only (and keeps token authentication on).
    assert listeners, "the sweep's Ray node was never seen listening"
    assert not not_on_loopback(listeners), listeners
    assert "Token authentication is enabled" in rest

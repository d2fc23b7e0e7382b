"""What a sweep sets up for the processes it starts (the embedded node inherits it)."""

import os

from harness.cluster.tasks import COMPILE_CACHE_ENV
from harness.sweep import compile_cache_here


def test_torch_compile_caches_live_under_the_artifact_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(COMPILE_CACHE_ENV, raising=False)
    compile_cache_here(tmp_path / "cache")
    assert os.environ[COMPILE_CACHE_ENV] == str((tmp_path / "cache" / "inductor").resolve())


def test_a_users_own_compile_cache_setting_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(COMPILE_CACHE_ENV, "/srv/inductor")
    compile_cache_here(tmp_path / "cache")
    assert os.environ[COMPILE_CACHE_ENV] == "/srv/inductor"

"""`harness cache`: listing and pruning a fake cache tree laid out as build.py writes it."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from harness.build.cache import cache_usage, list_cache, prune_cache
from harness.errors import InputError
from tests.conftest import run_cli

DAY = 86_400

OK, CORRUPT, OLD, MISSING, MOVED = ("a" * 20, "b" * 20, "c" * 20, "d" * 20, "e" * 20)


def make_variant(cache: Path, key: str, content: bytes = b"model bytes", *, age_days=0.0,
                 corrupt=False, missing=False, artifact_dir: Path | None = None,
                 model="digits-cnn", method="fp32", fmt="onnx", precision="fp32") -> Path:
    folder = cache / "variants" / key
    folder.mkdir(parents=True)
    artifact = folder / "model.onnx"
    artifact.write_bytes(content)
    manifest = {"variant_id": key, "model": model, "method": method, "format": fmt,
                "precision": precision,
                "artifact_path": str((artifact_dir or folder) / "model.onnx"),
                "sha256": hashlib.sha256(content).hexdigest(), "size_bytes": len(content)}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    if corrupt:
        artifact.write_bytes(content + b"flipped")
    if missing:
        artifact.unlink()
    if age_days:
        then = time.time() - age_days * DAY
        os.utime(folder / "manifest.json", (then, then))
    return folder


@pytest.fixture
def cache(tmp_path) -> Path:
    root = tmp_path / "cache"
    make_variant(root, OK, b"x" * 1000)
    make_variant(root, CORRUPT, b"y" * 500, corrupt=True, method="int8", precision="int8")
    make_variant(root, OLD, b"z" * 2000, age_days=40, fmt="torch")
    make_variant(root, MISSING, age_days=2, missing=True)
    make_variant(root, MOVED, artifact_dir=tmp_path / "elsewhere")
    fresh_temp = root / "variants" / f"{OK}.fresh123"
    fresh_temp.mkdir()
    stale_temp = root / "variants" / f"{OLD}.stale456"
    stale_temp.mkdir()
    (stale_temp / "exported.onnx").write_bytes(b"half" * 10)
    two_hours_ago = time.time() - 7200
    os.utime(stale_temp, (two_hours_ago, two_hours_ago))
    (root / "variants" / "README").write_text("not ours")  # never listed nor removed
    models = root / "models"
    models.mkdir()
    for suffix, data in ((".pt", b"w" * 300), (".json", b"{}"), (".lock", b"")):
        (models / f"digits_cnn-0123456789abcdef{suffix}").write_bytes(data)
    (root / "eval").mkdir()
    (root / "eval" / ("f" * 20 + ".npz")).write_bytes(b"n" * 700)
    return root


def by_id(entries):
    return {e["id"]: e for e in entries}


def test_list_reports_every_variant_with_status_size_and_last_use(cache):
    entries = by_id(list_cache(cache))
    ok = entries[OK]
    assert ok["kind"] == "variant" and ok["variant_id"] == OK
    assert (ok["model"], ok["method"], ok["format"], ok["precision"]) == (
        "digits-cnn", "fp32", "onnx", "fp32")
    assert ok["status"] == "ok" and ok["problem"] is None
    manifest_bytes = (cache / "variants" / OK / "manifest.json").stat().st_size
    assert ok["size_bytes"] == 1000 + manifest_bytes
    assert ok["age_days"] < 0.01 and ok["last_used"].endswith("+00:00")

    assert entries[CORRUPT]["status"] == "corrupt"
    assert "sha256" in entries[CORRUPT]["problem"]
    assert entries[CORRUPT]["precision"] == "int8"
    assert entries[MISSING]["status"] == "corrupt" and "missing" in entries[MISSING]["problem"]
    assert entries[MOVED]["status"] == "corrupt" and "outside" in entries[MOVED]["problem"]
    assert entries[OLD]["status"] == "ok" and 39.9 < entries[OLD]["age_days"] < 40.1

    assert entries[f"{OK}.fresh123"]["kind"] == "temp"
    assert entries[f"{OLD}.stale456"]["size_bytes"] == 40
    model = entries["digits_cnn-0123456789abcdef"]
    assert model["kind"] == "model" and model["size_bytes"] == 302
    assert entries["f" * 20 + ".npz"]["kind"] == "eval-pack"
    assert "README" not in entries


def test_usage_is_every_byte_under_the_cache(cache):
    expected = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
    assert cache_usage(cache) == expected
    assert cache_usage(cache) >= sum(e["size_bytes"] for e in list_cache(cache))


def test_missing_cache_folder_is_an_input_error(tmp_path):
    for call in (list_cache, cache_usage,
                 lambda p: prune_cache(p, older_than_days=1)):
        with pytest.raises(InputError, match="cache folder not found") as info:
            call(tmp_path / "nope")
        assert str(tmp_path / "nope") in str(info.value)


def test_prune_needs_a_criterion(cache):
    with pytest.raises(InputError, match="say what to prune"):
        prune_cache(cache)
    with pytest.raises(InputError, match=">= 0"):
        prune_cache(cache, older_than_days=float("nan"))


def test_dry_run_deletes_nothing(cache):
    before = sorted(p.name for p in (cache / "variants").iterdir())
    would = prune_cache(cache, older_than_days=0, dry_run=True)
    assert {e["id"] for e in would} == {OK, CORRUPT, OLD, MISSING, MOVED, f"{OLD}.stale456"}
    assert sorted(p.name for p in (cache / "variants").iterdir()) == before


def test_prune_old_removes_whole_folders_and_stale_temp_only(cache):
    removed = prune_cache(cache, older_than_days=30)
    assert {e["id"] for e in removed} == {OLD, f"{OLD}.stale456"}
    left = {p.name for p in (cache / "variants").iterdir()}
    assert left == {OK, CORRUPT, MISSING, MOVED, f"{OK}.fresh123", "README"}
    assert not any(name.startswith(".pruning-") for name in left)
    assert (cache / "models" / "digits_cnn-0123456789abcdef.pt").is_file()
    assert (cache / "eval" / ("f" * 20 + ".npz")).is_file()


def test_prune_corrupt_and_both_criteria(cache):
    removed = prune_cache(cache, older_than_days=1, corrupt_only=True)
    assert {e["id"] for e in removed} == {MISSING, f"{OLD}.stale456"}  # corrupt AND old
    removed = prune_cache(cache, corrupt_only=True)
    assert {e["id"] for e in removed} == {CORRUPT, MOVED}
    assert {e["id"] for e in list_cache(cache) if e["kind"] == "variant"} == {OK, OLD}
    assert all(e["status"] == "ok" for e in list_cache(cache) if e["kind"] == "variant")


def test_a_variant_used_after_listing_is_kept(cache, monkeypatch):
    """The build touches the manifest on a hit: prune re-checks right before removing."""
    import harness.build.cache as cache_mod

    real = cache_mod._entries

    def listing_then_use(root, now):
        entries = real(root, now)
        os.utime(cache / "variants" / OLD / "manifest.json")  # a sweep just reused it
        return entries

    monkeypatch.setattr(cache_mod, "_entries", listing_then_use)
    removed = prune_cache(cache, older_than_days=30)
    assert OLD not in {e["id"] for e in removed}
    assert (cache / "variants" / OLD / "model.onnx").is_file()


def test_a_cache_hit_touches_the_manifest(tmp_path, monkeypatch):
    """build_variant on a hit marks the variant used, so pruning by age is by last use.
    Model, data and key are stubbed: only the cache-hit path runs."""
    from types import SimpleNamespace

    import torch

    import harness.build.variant as build
    import harness.data
    import harness.models
    from harness.matrix.schema import BaselineMethod, ModelSpec

    folder = make_variant(tmp_path / "cache", OK, age_days=10)
    manifest = folder / "manifest.json"
    old = manifest.stat().st_mtime
    monkeypatch.setattr(harness.models, "load_model", lambda spec, base, cache: SimpleNamespace(
        weights_digest="d", input_shape=(1, 32, 32), info={}, inputs=(), task="generic"))
    monkeypatch.setattr(harness.data, "load_dataset", lambda *args: SimpleNamespace(
        name="d", shape={}, calib={}, train=None, train_y=None))
    monkeypatch.setattr(build, "eval_pack", lambda loaded, dataset, cache, *a, **k: (None, {}))
    monkeypatch.setattr(build, "variant_key", lambda *args, **kw: OK)
    threads = torch.get_num_threads()
    try:
        result = build.build_variant(build.VariantRequest(
            model=ModelSpec(name="digits-cnn", source="builtin:digits_cnn", dataset="digits"),
            method="fp32", steps=(BaselineMethod(name="fp32", kind="baseline"),),
            format="onnx", base_dir=str(tmp_path), cache_dir=str(tmp_path / "cache")))
    finally:
        torch.set_num_threads(threads)
    assert result["cached"] is True and result["variant_id"] == OK
    assert manifest.stat().st_mtime > old + 9 * DAY
    assert by_id(list_cache(tmp_path / "cache"))[OK]["age_days"] < 0.01


def test_cli_cache_list_json(cache):
    out = run_cli("cache", "list", "--cache", str(cache), "--format", "json", timeout=120)
    assert out.returncode == 0, out.stderr
    entries = by_id(json.loads(out.stdout))
    assert entries[OK]["status"] == "ok" and entries[CORRUPT]["status"] == "corrupt"
    assert entries[OLD]["age_days"] > 39


def test_cli_cache_prune_and_missing_folder(cache, tmp_path):
    out = run_cli("cache", "prune", "--cache", str(cache), "--corrupt", "--dry-run",
                  timeout=120)
    assert out.returncode == 0, out.stderr
    assert "would remove 4 folders" in out.stdout and (cache / "variants" / CORRUPT).is_dir()
    out = run_cli("cache", "list", "--cache", str(tmp_path / "nope"), timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert str(tmp_path / "nope") in out.stderr

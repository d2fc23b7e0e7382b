"""Ready-made queries, recommend, report and compare on a real swept database."""

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO, run_cli
from tests.integration.conftest import query

pytestmark = pytest.mark.integration
QUERIES = sorted((REPO / "results" / "queries").glob("*.sql"))


def test_the_shipped_query_files_exist():
    assert {q.name for q in QUERIES} >= {"best_per_device.sql", "speedup_vs_fp32.sql",
                                         "size_reduction.sql", "failed_cells.sql"}


@pytest.mark.parametrize("sql_file", QUERIES, ids=[q.name for q in QUERIES])
def test_every_ready_made_query_runs_on_a_swept_database(swept, sql_file):
    db, _, _ = swept
    out = run_cli("query", str(sql_file), "--db", str(db), "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    if sql_file.name == "best_per_device.sql":
        assert {r["model"] for r in rows} == {"digits-cnn"} and len(rows) == 2  # two tags
        assert all(r["accuracy_drop_pts"] <= 1.0 for r in rows)
    if sql_file.name == "speedup_vs_fp32.sql":
        methods = {(r["method"], r["format"]) for r in rows}
        assert methods == {("int8", "onnx"), ("int8-dyn", "onnx")}
        assert all(r["speedup"] > 0 for r in rows)
    if sql_file.name == "size_reduction.sql":
        assert all(r["size_ratio"] < 0.5 for r in rows)  # int8 weights: about a quarter
    if sql_file.name == "failed_cells.sql":
        assert {r["status"] for r in rows} == {"skipped"}


def test_latest_view_holds_the_latest_run_per_matrix_and_tag(swept):
    db, runs, _ = swept
    rows = query(db, "select distinct run_id, tag from latest order by tag nulls first")
    assert [r["run_id"] for r in rows] == runs and [r["tag"] for r in rows] == [None, "again"]


def test_recommend_answers_what_to_ship(swept):
    db, runs, _ = swept
    out = run_cli("recommend", "--db", str(db), "--run", runs[0])
    assert out.returncode == 0, out.stderr
    assert "digits-cnn" in out.stdout and "intel-cpu" in out.stdout
    size = run_cli("recommend", "--db", str(db), "--metric", "size", "--run", runs[0])
    assert size.returncode == 0 and "int8" in size.stdout
    energy = run_cli("recommend", "--db", str(db), "--metric", "energy", "--run", runs[0])
    assert energy.returncode == 0 and "no energy counter" in energy.stdout


def test_report_html_and_markdown(swept, tmp_path):
    db, runs, _ = swept
    html = tmp_path / "r.html"
    out = run_cli("report", runs[0], "--db", str(db), "--out", str(html))
    assert out.returncode == 0, out.stderr
    text = html.read_text()
    assert runs[0] in text and text.count("data:image/png;base64,") >= 4
    md = tmp_path / "r.md"
    out = run_cli("report", "tag:again", "--db", str(db), "--out", str(md), "--format", "md")
    assert out.returncode == 0, out.stderr
    assert runs[1] in md.read_text()
    out = run_cli("report", "nope", "--db", str(db), "--out", str(md))
    assert out.returncode == 2 and "Traceback" not in out.stderr


def _slower_copy(db: Path, tmp_path: Path, run_id: str, factor: float) -> Path:
    """A copy of the database with a new run `slow`: run_id's cells with every latency
    sample (and the p50 and its CI, which are computed from them) multiplied by `factor`."""
    copy = tmp_path / "slow.duckdb"
    shutil.copy(db, copy)
    con = duckdb.connect(str(copy))
    con.execute("INSERT INTO runs SELECT * REPLACE ('slow' AS run_id, now() AS started_at, "
                "'ok' AS status, 'slow' AS tag) FROM runs WHERE run_id = ?", [run_id])
    con.execute("INSERT INTO cells SELECT * REPLACE ('slow' AS run_id) FROM cells "
                "WHERE run_id = ?", [run_id])
    con.execute(f"INSERT INTO measurements SELECT * REPLACE ('slow' AS run_id, "
                f"latency_p50_ms * {factor} AS latency_p50_ms, "
                f"latency_p50_ci_low_ms * {factor} AS latency_p50_ci_low_ms, "
                f"latency_p50_ci_high_ms * {factor} AS latency_p50_ci_high_ms) FROM measurements "
                "WHERE run_id = ?", [run_id])
    con.execute(f"INSERT INTO latency_samples SELECT * REPLACE ('slow' AS run_id, "
                f"latency_ms * {factor} AS latency_ms) FROM latency_samples "
                "WHERE run_id = ?", [run_id])
    con.close()
    return copy


def test_compare_confirm_remeasures_both_artifacts_interleaved(swept, tmp_path):
    """Two findings at batch 1, both 2x slower in the stored samples: digits int8/onnx has
    the same artifact on both sides, and the candidate's fp32/onnx cell points at the
    dynamic-int8 artifact. --confirm re-measures both side by side and sorts each into
    regressions or not reproduced. Which way each goes depends on this host's speed
    (the decision rule is tested on fixed ratios in tests/harness/results/test_compare.py):
    here only that both were re-measured and the exit code follows the kept findings."""
    db, runs, _ = swept
    copy = tmp_path / "confirm.duckdb"
    shutil.copy(db, copy)
    con = duckdb.connect(str(copy))
    con.execute("INSERT INTO runs SELECT * REPLACE ('cand' AS run_id, now() AS started_at, "
                "'ok' AS status, 'cand' AS tag) FROM runs WHERE run_id = ?", [runs[0]])
    con.execute("INSERT INTO cells SELECT * REPLACE ('cand' AS run_id) FROM cells "
                "WHERE run_id = ?", [runs[0]])
    con.execute("UPDATE cells SET variant_id = (SELECT variant_id FROM cells WHERE run_id = "
                "'cand' AND method = 'int8-dyn' AND format = 'onnx') WHERE run_id = 'cand' "
                "AND method = 'fp32' AND format = 'onnx'")
    slow = ("CASE WHEN batch_size = 1 AND (cell_id LIKE '%/fp32/onnx/%' "
            "OR cell_id LIKE '%/int8/onnx/%') THEN 2.0 ELSE 1.0 END")
    con.execute(f"INSERT INTO measurements SELECT * REPLACE ('cand' AS run_id, "
                f"latency_p50_ms * {slow} AS latency_p50_ms, "
                f"latency_p50_ci_low_ms * {slow} AS latency_p50_ci_low_ms, "
                f"latency_p50_ci_high_ms * {slow} AS latency_p50_ci_high_ms) "
                "FROM measurements WHERE run_id = ?", [runs[0]])
    con.execute(f"INSERT INTO latency_samples SELECT * REPLACE ('cand' AS run_id, "
                f"latency_ms * {slow} AS latency_ms) FROM latency_samples "
                "WHERE run_id = ?", [runs[0]])
    con.close()
    args = ("compare", runs[0], "tag:cand", "--db", str(copy), "--min-effect", "0.5",
            "--format", "json")
    plain = run_cli(*args)
    assert plain.returncode == 1
    assert {(r["method"], r["batch_size"]) for r in json.loads(plain.stdout)["regressions"]} \
        == {("fp32", 1), ("int8", 1)}
    confirmed = run_cli(*args, "--confirm", "8")
    data = json.loads(confirmed.stdout)
    assert confirmed.returncode in (0, 1), confirmed.stdout + confirmed.stderr
    found = data["regressions"] + data["unconfirmed"]
    assert sorted((r["method"], r["batch_size"]) for r in found) == [("fp32", 1), ("int8", 1)]
    for finding in found:
        assert "re-measured side by side, 8 alternating blocks: candidate/baseline" in \
            finding["note"], finding["note"]
    assert confirmed.returncode == (1 if data["regressions"] else 0)
    bad = run_cli(*args, "--confirm", "1")
    assert bad.returncode == 2 and "between 2 and 400" in bad.stderr


def test_compare_gates_on_real_samples(swept, tmp_path):
    db, runs, _ = swept
    same = run_cli("compare", runs[0], runs[0], "--db", str(db))
    assert same.returncode == 0, same.stdout + same.stderr
    slow_db = _slower_copy(db, tmp_path, runs[0], 1.2)
    slow = run_cli("compare", runs[0], "tag:slow", "--db", str(slow_db))
    assert slow.returncode == 1, slow.stdout + slow.stderr
    for cell in ("digits-cnn", "int8", "onnx"):
        assert cell in slow.stdout
    as_json = run_cli("compare", runs[0], "slow", "--db", str(slow_db), "--format", "json")
    data = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and len(data["regressions"]) == 8  # 4 cells x 2 batches
    bad = run_cli("compare", runs[0], "tag:nothing", "--db", str(db))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr

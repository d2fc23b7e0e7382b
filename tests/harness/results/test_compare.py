"""Golden tests of `harness compare` on fixture runs, and run references on a real store.

The input runs live in tests/fixtures/compare/runs.json (seeded lognormal latencies; delete
it to regenerate). The rendered outputs are compared with the committed *.golden.md/json;
after an intended change to the rendering, rewrite them with
    HARNESS_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/harness/test_compare.py
and review the diff. Each case's verdict is also asserted directly below, so regenerating
the goldens cannot silently accept a wrong verdict."""

import io
import json
import math
import os
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from harness.results.compare import (CellData, Thresholds, compare_runs, load_run, run_compare,
                             to_json, to_markdown)
from harness.errors import InputError
from harness.results.runref import resolve_run
from harness.matrix.expand import Cell
from harness.results.store import Store, open_read_only

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "compare"
RUNS = FIXTURES / "runs.json"
UPDATE = os.environ.get("HARNESS_UPDATE_GOLDEN") == "1"
BASE_ID, CAND_ID = "fixture-baseline", "fixture-candidate"
PREFIX = ("digits_cnn", "onnx", "intel-cpu")


def _key(method: str, batch_size: int | None = 1) -> tuple:
    return (PREFIX[0], method, *PREFIX[1:], batch_size, "")


# fixture generation -------------------------------------------------------------------------
def _lognormal(rng, median: float, cv: float, n: int) -> np.ndarray:
    sigma = math.sqrt(math.log(1 + cv * cv))  # the lognormal whose CV is `cv`
    return median * np.exp(sigma * rng.standard_normal(n))


def _noisy(rng, median: float, n: int = 400) -> np.ndarray:
    """CV 15% plus 2% of 3x spikes (a preempted thread): a realistic shared-CPU cell."""
    s = _lognormal(rng, median, 0.15, n)
    spikes = rng.random(n) < 0.02
    s[spikes] *= 3.0
    return s


def _row(method, samples, *, batch_size=1, acc=0.975, kind="top1", rss=100.0):
    samples = np.round(samples, 4)
    return {"model": PREFIX[0], "method": method, "format": PREFIX[1], "device": PREFIX[2],
            "batch_size": batch_size, "status": "ok", "error": None,
            "latency_p50_ms": float(np.median(samples)), "accuracy": acc, "accuracy_kind": kind,
            "peak_rss_mb": rss, "samples_ms": samples.tolist()}


def _failed(method, status, error):
    return {"model": PREFIX[0], "method": method, "format": PREFIX[1], "device": PREFIX[2],
            "batch_size": None, "status": status, "error": error, "latency_p50_ms": None,
            "accuracy": None, "accuracy_kind": None, "peak_rss_mb": None, "samples_ms": []}


def _generate() -> dict:
    rng = np.random.default_rng(20260611)
    few = _lognormal(rng, 2.0, 0.5, 5)
    base = [
        _row("a_noisy_same", _noisy(rng, 2.0)),
        _row("b_slower_20", _noisy(rng, 2.0)),
        _row("c_slower_5_many", _lognormal(rng, 2.0, 0.15, 2000)),
        _row("d_slower_20_few", few),
        _row("e_faster_20", _noisy(rng, 2.0)),
        _row("f_top1_drop_2pts", _noisy(rng, 2.0), acc=0.975),
        _row("f_fidelity_drop_1pt", _noisy(rng, 2.0), acc=1.0, kind="fidelity"),
        _row("g_memory_30pct", _noisy(rng, 2.0), rss=100.0),
        _row("h_failed", _noisy(rng, 2.0), batch_size=1),
        _row("h_failed", _noisy(rng, 9.0), batch_size=8),
        _row("h_missing", _noisy(rng, 2.0)),
    ]
    cand = [
        _row("a_noisy_same", _noisy(rng, 2.0), rss=101.0),
        _row("b_slower_20", _noisy(rng, 2.4)),
        _row("c_slower_5_many", _lognormal(rng, 2.0 * 1.05, 0.15, 2000)),
        # Exactly 20% slower, but five samples each cannot reach p < 0.002 (the exact
        # two-sided minimum is 2/252).
        _row("d_slower_20_few", rng.permutation(few * 1.2)),
        _row("e_faster_20", _noisy(rng, 1.6)),
        _row("f_top1_drop_2pts", _noisy(rng, 2.0), acc=0.955),
        _row("f_fidelity_drop_1pt", _noisy(rng, 2.0), acc=0.99, kind="fidelity"),
        _row("g_memory_30pct", _noisy(rng, 2.0), rss=130.0),
        _failed("h_failed", "failed", "onnxruntime InvalidGraph: node Conv_3 has no kernel\n"
                                      "Traceback ..."),
        _row("i_new", _noisy(rng, 3.0)),
    ]
    return {"seed": 20260611, "baseline": base, "candidate": cand}


@pytest.fixture(scope="module")
def runs() -> dict:
    if not RUNS.exists():  # inputs are pinned once; delete the file to draw them again
        FIXTURES.mkdir(parents=True, exist_ok=True)
        data = _generate()
        cells = {side: ",\n".join(json.dumps(r) for r in data[side])
                 for side in ("baseline", "candidate")}  # one cell a line: readable diffs
        RUNS.write_text(f'{{"seed": {data["seed"]},\n"baseline": [\n{cells["baseline"]}],\n'
                        f'"candidate": [\n{cells["candidate"]}]}}\n')
    return json.loads(RUNS.read_text())


def _cells(rows: list[dict]) -> dict:
    return {(r["model"], r["method"], r["format"], r["device"], r["batch_size"], ""): CellData(
        np.asarray(r["samples_ms"], dtype=np.float64), r["latency_p50_ms"], r["accuracy"],
        r["accuracy_kind"], r["peak_rss_mb"], r["status"], r["error"]) for r in rows}


def _check_golden(name: str, text: str) -> None:
    path = FIXTURES / name
    if UPDATE:
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with HARNESS_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text()


def _golden_json(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


# the pure comparison ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def comparison(runs):
    return compare_runs(_cells(runs["baseline"]), _cells(runs["candidate"]), Thresholds())


def test_each_case_gets_its_verdict(comparison):
    regs = {(f.key, f.kind): f for f in comparison.regressions}
    assert set(regs) == {
        (_key("b_slower_20"), "latency"),                   # (b)
        (_key("f_top1_drop_2pts"), "accuracy"),             # (f)
        (_key("f_fidelity_drop_1pt"), "accuracy"),          # (f) unlabelled
        (_key("g_memory_30pct"), "memory"),                 # (g)
        (_key("h_failed", 1), "status"),                    # (h), every baseline batch size
        (_key("h_failed", 8), "status"),
        (_key("h_missing"), "status"),
    }
    assert regs[(_key("h_failed", 8), "status")].candidate == "failed"
    assert regs[(_key("h_failed", 8), "status")].note.startswith("onnxruntime InvalidGraph")
    assert regs[(_key("h_missing"), "status")].candidate == "missing"
    assert regs[(_key("b_slower_20"), "latency")].change == pytest.approx(0.2, abs=0.05)
    assert regs[(_key("f_top1_drop_2pts"), "accuracy")].change == pytest.approx(-2.0)
    assert [(f.key, f.kind) for f in comparison.improvements] == [
        (_key("e_faster_20"), "latency")]                   # (e)
    assert [(f.key, f.candidate) for f in comparison.new] == [(_key("i_new"), "ok")]  # (i)
    # (a) noisy but unchanged, (c) significant but small, (d) large but not significant
    assert comparison.unchanged_count == 3
    assert comparison.exit_code == 1


def test_the_gates_are_really_exercised(runs):
    """(c) must be significant and (d) must pass the effect, or those cases prove nothing."""
    base, cand = _cells(runs["baseline"]), _cells(runs["candidate"])
    c_b, c_c = base[_key("c_slower_5_many")], cand[_key("c_slower_5_many")]
    assert mannwhitneyu(c_b.samples_ms, c_c.samples_ms).pvalue < Thresholds().p_value
    assert 0 < c_c.latency_p50_ms / c_b.latency_p50_ms - 1 < Thresholds().min_latency_effect
    d_b, d_c = base[_key("d_slower_20_few")], cand[_key("d_slower_20_few")]
    assert d_c.latency_p50_ms / d_b.latency_p50_ms - 1 > Thresholds().min_latency_effect
    for side in (base, cand):  # really noisy on both sides
        samples = side[_key("a_noisy_same")].samples_ms
        assert np.std(samples) / np.mean(samples) > 0.15


def test_noisy_but_unchanged_is_not_a_regression(runs):
    key = _key("a_noisy_same")
    base, cand = _cells(runs["baseline"]), _cells(runs["candidate"])
    cmp = compare_runs({key: base[key]}, {key: cand[key]}, Thresholds())
    assert (cmp.regressions, cmp.improvements, cmp.unchanged_count, cmp.exit_code) == ([], [],
                                                                                        1, 0)
    _check_golden("noisy_unchanged.golden.md", to_markdown(cmp, BASE_ID, CAND_ID))


def test_golden_markdown(comparison):
    _check_golden("all.golden.md", to_markdown(comparison, BASE_ID, CAND_ID))


def test_golden_json(comparison):
    _check_golden("all.golden.json", _golden_json(to_json(comparison, BASE_ID, CAND_ID)))


def test_a_baseline_failure_fixed_in_the_candidate_is_an_improvement():
    key = _key("x")
    cmp = compare_runs({_key("x", None): CellData(status="timeout")},
                       {key: CellData(np.ones(10), 1.0)}, Thresholds())
    assert [(f.key, f.baseline, f.candidate) for f in cmp.improvements] == [
        (key, "timeout", "ok")]
    assert (cmp.regressions, cmp.new, cmp.exit_code) == ([], [], 0)


@pytest.mark.parametrize("base, cand, regressed", [
    (CellData(accuracy=0.975, accuracy_kind="top1"), CellData(accuracy=0.970,
                                                              accuracy_kind="top1"), False),
    (CellData(accuracy=0.975, accuracy_kind="top1"), CellData(accuracy=0.9699,
                                                              accuracy_kind="top1"), True),
    # top-1 and fidelity agreement are different measures: never compared with each other
    (CellData(accuracy=0.975, accuracy_kind="top1"), CellData(accuracy=0.5,
                                                              accuracy_kind="fidelity"), False),
    (CellData(peak_rss_mb=100.0), CellData(peak_rss_mb=110.0), False),
    (CellData(peak_rss_mb=100.0), CellData(peak_rss_mb=110.5), True),
])
def test_accuracy_and_memory_limits_are_inclusive(base, cand, regressed):
    cmp = compare_runs({_key("x"): base}, {_key("x"): cand}, Thresholds())
    assert bool(cmp.regressions) == regressed


def test_stricter_thresholds_turn_the_small_change_into_a_regression(runs):
    key = _key("c_slower_5_many")
    base, cand = _cells(runs["baseline"]), _cells(runs["candidate"])
    cmp = compare_runs({key: base[key]}, {key: cand[key]}, Thresholds(min_latency_effect=0.02))
    assert [(f.key, f.kind) for f in cmp.regressions] == [(key, "latency")]


# run references and the real store ----------------------------------------------------------
def _write_run(store: Store, run_id: str, tag: str | None, started: datetime,
               rows: list[dict] = (), status: str = "ok") -> None:
    store.start_run({"run_id": run_id, "matrix_name": "fixture", "tag": tag})
    # start_run stamps the wall clock; pin the order so "latest" is not a race.
    store.con.execute("UPDATE runs SET started_at = ? WHERE run_id = ?", [started, run_id])
    by_cell: dict[tuple, list[dict]] = {}
    for r in rows:
        by_cell.setdefault((r["model"], r["method"], r["format"], r["device"]), []).append(r)
    for (model, method, fmt, device), cell_rows in by_cell.items():
        first = cell_rows[0]
        if first["status"] != "ok":
            store.write_cell(run_id, Cell(model, method, fmt, device), status=first["status"],
                             error=first["error"])
            continue
        store.write_cell(run_id, Cell(model, method, fmt, device), status="ok", measurements=[{
            "batch_size": r["batch_size"], "threads": 1, "precision": "fp32",
            "latency_p50_ms": r["latency_p50_ms"], "iterations": len(r["samples_ms"]),
            "accuracy_top1": r["accuracy"] if r["accuracy_kind"] == "top1" else None,
            "fidelity_top1_agreement": r["accuracy"] if r["accuracy_kind"] == "fidelity"
            else None, "quality": r["accuracy"], "quality_metric": r["accuracy_kind"],
            "peak_rss_mb": r["peak_rss_mb"], "samples_ms": r["samples_ms"]}
            for r in cell_rows])
    if status != "running":
        store.finish_run(run_id, status)


@pytest.fixture(scope="module")
def db(runs, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("compare") / "r.duckdb"
    store = Store(path)
    t0 = datetime(2026, 6, 1, 2, 0)
    _write_run(store, "n0", "nightly", t0)
    _write_run(store, "adhoc", None, t0 + timedelta(hours=5))
    _write_run(store, BASE_ID, "nightly", t0 + timedelta(days=1), runs["baseline"])
    _write_run(store, CAND_ID, "nightly", t0 + timedelta(days=2), runs["candidate"],
               status="failed")
    _write_run(store, "cut", "nightly", t0 + timedelta(days=2, hours=12), status="interrupted")
    _write_run(store, "tonight", "nightly", t0 + timedelta(days=3), status="running")
    store.close()
    return path


@pytest.mark.parametrize("ref, run_id", [
    ("adhoc", "adhoc"), ("tonight", "tonight"),       # a literal id, even a running one
    ("cut", "cut"),                                   # an interrupted run, by its id
    ("tag:nightly", CAND_ID),                         # not `tonight` (running), not `cut`
    ("tag:nightly~1", BASE_ID), ("tag:nightly~2", "n0"),
])
def test_run_references(db, ref, run_id):
    con = open_read_only(db)
    try:
        assert resolve_run(con, ref) == run_id
    finally:
        con.close()


@pytest.mark.parametrize("ref, message", [
    ("tag:weekly", r"no finished run is tagged 'weekly'.*allowed: tag:nightly \(3 runs\)"),
    ("tag:nightly~3", r"only 3 finished run\(s\).*allowed: tag:nightly~0 to tag:nightly~2"),
    ("tag:nightly~x", r"cannot read 'tag:nightly~x'"),
    ("tag:", r"cannot read 'tag:'"),
    ("nope", r"no run 'nope'.*most recent: tonight, cut, fixture-candidate"),
])
def test_bad_run_references_name_what_exists(db, ref, message):
    con = open_read_only(db)
    try:
        with pytest.raises(InputError, match=message):
            resolve_run(con, ref)
    finally:
        con.close()


def test_load_run_reads_back_what_the_store_wrote(db, runs):
    con = open_read_only(db)
    try:
        loaded = load_run(con, BASE_ID)
        cand = load_run(con, CAND_ID)
    finally:
        con.close()
    expected = _cells(runs["baseline"])
    assert set(loaded) == set(expected)
    for key, cell in expected.items():
        got = loaded[key]
        np.testing.assert_array_equal(got.samples_ms, cell.samples_ms)
        assert (got.latency_p50_ms, got.accuracy, got.accuracy_kind, got.peak_rss_mb,
                got.status) == (cell.latency_p50_ms, cell.accuracy, cell.accuracy_kind,
                                cell.peak_rss_mb, cell.status)
    assert cand[_key("h_failed", None)].status == "failed"
    con = open_read_only(db)
    try:
        assert load_run(con, "n0") == {}  # a run without cells or samples
    finally:
        con.close()


def test_end_to_end_compare_matches_the_golden_files(db):
    out = io.StringIO()
    assert run_compare(str(db), "tag:nightly~1", "tag:nightly", out=out) == 1
    # the repro line names this test's temporary database: checked apart from the golden
    text, repro = out.getvalue().rsplit("\n\nRe-measure the latency findings", 1)
    assert text + "\n" == (FIXTURES / "all.golden.md").read_text()
    assert repro.endswith(f"`harness compare {BASE_ID} {CAND_ID} --confirm --db {db}`\n")
    out = io.StringIO()
    assert run_compare(str(db), BASE_ID, CAND_ID, fmt="json", out=out) == 1
    assert _golden_json(json.loads(out.getvalue())) == (FIXTURES / "all.golden.json").read_text()


def test_a_run_against_itself_has_no_regression(db):
    out = io.StringIO()
    assert run_compare(str(db), BASE_ID, BASE_ID, out=out) == 0
    assert "no regression" in out.getvalue()


def test_an_unknown_run_propagates_as_input_error(db):
    with pytest.raises(InputError, match=r"r.duckdb: run reference: no run 'nope'"):
        run_compare(str(db), "nope", "tag:nightly")


def test_overlapping_cis_are_not_a_regression_even_when_significant():
    """Many samples make a 12% shift significant; but when the runs' process-aware CIs
    overlap (each run's processes varied by more than that), the gate holds. Only CIs of
    multi-process cells count."""
    rng = np.random.default_rng(4)
    base = rng.lognormal(0, 0.02, 3000)
    cand = base * 1.12
    key = _key("x", 1)
    wide = CellData(base, float(np.median(base)), ci_ms=(0.90, 1.15), processes=3)
    wide_c = CellData(cand, float(np.median(cand)), ci_ms=(1.05, 1.30), processes=3)
    assert compare_runs({key: wide}, {key: wide_c}, Thresholds()).exit_code == 0
    # single-process CIs carry no process drift: the test on the samples decides alone
    one = CellData(base, float(np.median(base)), ci_ms=(0.90, 1.15))
    one_c = CellData(cand, float(np.median(cand)), ci_ms=(1.05, 1.30))
    assert compare_runs({key: one}, {key: one_c}, Thresholds()).exit_code == 1
    narrow = CellData(base, float(np.median(base)), ci_ms=(0.99, 1.01), processes=3)
    narrow_c = CellData(cand, float(np.median(cand)), ci_ms=(1.11, 1.13), processes=3)
    cmp = compare_runs({key: narrow}, {key: narrow_c}, Thresholds())
    assert cmp.exit_code == 1 and cmp.regressions[0].kind == "latency"


def test_confirm_keeps_reproduced_findings_and_lists_the_rest(monkeypatch):
    """--confirm: a finding whose interleaved re-measurement does not pass the minimum
    effect in the same direction is listed as not reproduced and does not fail the gate;
    one that cannot be measured here stands."""
    from harness.results import compare as cmp_mod
    from harness.results.confirm import Remeasured

    rng = np.random.default_rng(5)
    base = rng.lognormal(0, 0.02, 500)
    keys = {name: _key(name) for name in ("drifted", "real", "elsewhere", "faster")}
    baseline = {k: CellData(base, float(np.median(base))) for k in keys.values()}
    candidate = {k: CellData(base * 1.3, float(np.median(base)) * 1.3) for k in keys.values()}
    candidate[keys["faster"]] = CellData(base / 1.3, float(np.median(base)) / 1.3)
    cmp = compare_runs(baseline, candidate, Thresholds())
    assert len(cmp.regressions) == 3 and len(cmp.improvements) == 1

    outcome = {keys["drifted"]: Remeasured(1.02, 20, (1.0, 1.04)),
               keys["real"]: Remeasured(1.31, 20, (1.3, 1.35)),
               keys["elsewhere"]: Remeasured(None, reason="this host has no nvidia-gpu"),
               keys["faster"]: Remeasured(0.97, 20, (0.95, 0.99))}
    monkeypatch.setattr("harness.results.confirm.remeasure", lambda cells, blocks: outcome[cells])
    cmp_mod.confirm_findings(cmp, {k: k for k in keys.values()}, blocks=20)
    assert {f.key[1] for f in cmp.regressions} == {"real", "elsewhere"}
    assert {f.key[1] for f in cmp.unconfirmed} == {"drifted", "faster"}
    assert cmp.improvements == [] and cmp.exit_code == 1
    notes = {f.key[1]: f.note for f in cmp.regressions + cmp.unconfirmed}
    assert "20 alternating blocks: candidate/baseline 1.310 (IQR 1.300-1.350)" in notes["real"]
    assert "not re-measured: this host has no nvidia-gpu" in notes["elsewhere"]
    text = to_markdown(cmp, "a", "b")
    assert "Not reproduced on re-measurement (not counted) (2)" in text
    assert to_json(cmp)["unconfirmed"][0]["method"] in ("drifted", "faster")


def test_without_confirm_the_output_has_no_confirmation_parts():
    key = _key("x")
    cmp = compare_runs({key: CellData(np.ones(10), 1.0)}, {key: CellData(np.ones(10), 1.0)})
    assert "unconfirmed" not in to_json(cmp) and "re-measured" not in to_markdown(cmp, "a", "b")

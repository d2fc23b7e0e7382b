"""Golden tests of the change-point reading on recorded series (tests/fixtures/history):
a step, a drift, pure noise, a single outlier and a history too noisy to judge."""

import json
from pathlib import Path

import pytest

from harness.results.changepoints import MIN_RUNS, analyze

SERIES = json.loads((Path(__file__).parents[2] / "fixtures" / "history" / "series.json")
                    .read_text())
NAMES = [name for name in SERIES if not name.startswith("_")]


@pytest.mark.parametrize("name", NAMES)
def test_each_recorded_series_gets_its_verdict(name):
    case = SERIES[name]
    verdict = analyze(case["values"])
    assert verdict.kind == case["verdict"], verdict
    assert [c.index for c in verdict.changes] == case["changes"]
    assert verdict.regressed == case["regressed"]
    if "outliers" in case:
        assert verdict.outliers == case["outliers"]


def test_the_step_says_its_size_and_that_it_held():
    (change,) = analyze(SERIES["step"]["values"]).changes
    assert change.change == pytest.approx(5.81 / 2.23 - 1, rel=0.02)
    assert change.worse and change.confirmed


def test_a_drift_says_how_far_it_went():
    verdict = analyze(SERIES["drift"]["values"])
    assert verdict.drift == pytest.approx(0.47, abs=0.03)


def test_higher_is_better_figures_are_turned_the_right_way():
    falling = [0.98, 0.981, 0.979, 0.98, 0.85, 0.851, 0.849, 0.85]
    (change,) = analyze(falling, higher_is_better=True).changes
    assert change.worse and change.change == pytest.approx(0.85 / 0.98 - 1, rel=0.01)
    rising = [0.85, 0.851, 0.849, 0.85, 0.98, 0.981, 0.979, 0.98]
    assert not analyze(rising, higher_is_better=True).regressed


def test_a_new_level_of_one_run_is_a_step_not_yet_confirmed():
    values = SERIES["noise"]["values"][:10] + [0.45]
    (change,) = analyze(values).changes
    assert change.index == 10 and not change.confirmed and change.worse


def test_wide_cis_weigh_less():
    # the same values; the run with the huge CI is the one that moves
    values = [1.0, 1.0, 1.0, 1.0, 1.5, 1.0, 1.0, 1.0]
    lows = [0.99] * 4 + [0.5] + [0.99] * 3
    highs = [1.01] * 4 + [2.5] + [1.01] * 3
    assert analyze(values, lows, highs).kind == "stable"


def test_too_few_runs_are_not_judged():
    assert analyze([1.0] * (MIN_RUNS - 1)).kind == "too short"

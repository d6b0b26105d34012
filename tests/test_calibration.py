"""Isotonic calibration: pool-adjacent-violators agrees with scikit-learn, the map is monotone and
interpolates like sklearn, files round-trip and foreign files are never overwritten, and
`mlgrade eval --fit-calibration/--calibration` puts the score on the data set's scale."""

from __future__ import annotations

import json
import random

import pytest
from csv_helpers import memory_scores
from sklearn.isotonic import IsotonicRegression

from mlgrade.errors import UsageError
from mlgrade.evaluation.calibration import (
    fit_isotonic, load_calibration, pool_adjacent_violators, save_calibration,
)


@pytest.mark.parametrize("y, expected", [
    ([1, 2, 3], [1, 2, 3]),
    ([3, 2, 1], [2, 2, 2]),
    ([1, 3, 2, 4], [1, 2.5, 2.5, 4]),
    ([5, 1, 1, 1, 9], [2, 2, 2, 2, 9]),
])
def test_pav_small_cases(y, expected):
    assert pool_adjacent_violators(y) == pytest.approx(expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_matches_sklearn(seed):
    rng = random.Random(seed)
    x = [round(rng.uniform(0, 100), 0) for _ in range(300)]  # rounded: many ties
    y = [min(5, max(0, 2 + s / 40 + rng.gauss(0, 1))) for s in x]
    cal = fit_isotonic(x, y)
    ref = IsotonicRegression(out_of_bounds="clip").fit(x, y)
    probe = [-5, 0, 3.3, 17, 50.5, 77.7, 99, 100, 130]
    assert [cal(p) for p in probe] == pytest.approx(list(ref.predict(probe)), abs=1e-9)
    assert all(a <= b for a, b in zip(cal.ys, cal.ys[1:]))


def test_round_trip_and_refusals(tmp_path):
    cal = fit_isotonic([0, 50, 100, 100], [1, 3, 4, 5])
    path = tmp_path / "cal.json"
    save_calibration(cal, path)
    again = load_calibration(path)
    assert [again(s) for s in (0, 25, 100)] == pytest.approx([cal(s) for s in (0, 25, 100)])
    save_calibration(cal, path)  # replacing our own file is fine
    foreign = tmp_path / "notes.json"
    foreign.write_text('{"mine": true}')
    with pytest.raises(UsageError, match="refusing to overwrite"):
        save_calibration(cal, foreign)
    assert foreign.read_text() == '{"mine": true}'
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "mlgrade-calibration/1", "x": [0, 50], "y": [3, 1]}))
    with pytest.raises(UsageError, match="non-decreasing"):
        load_calibration(bad)
    with pytest.raises(UsageError, match="at least two"):
        fit_isotonic([1], [1])


def test_cli_fit_then_apply(tmp_path, cli):
    data = memory_scores(tmp_path / "d.csv", (("A location in memory storing a value.", "5"), ("A value in memory.", "4"),
                                               ("A loop.", "3"), ("Memory location that stores values.", "5")))
    cal = tmp_path / "cal.json"
    fit = cli(["eval", data, "--scale", "0-5", "--grader", "offline", "--fit-calibration", cal, "--json"])
    assert fit.exit_code == 0, fit.output
    assert json.loads(fit.stdout)["fitted_calibration"]["n"] == 4
    res = cli(["eval", data, "--scale", "0-5", "--grader", "offline", "--calibration", cal, "--json"])
    m = json.loads(res.stdout)["metrics"]
    # In sample, the least-squares monotone fit is at least as good as any constant (the mean among them).
    assert m["offline, calibrated"]["rmse"] < m["offline"]["rmse"]
    assert m["offline, calibrated"]["rmse"] <= m["mean baseline"]["rmse"] + 1e-9
    missing = cli(["eval", data, "--scale", "0-5", "--grader", "offline", "--calibration", tmp_path / "nope.json"])
    assert missing.exit_code == 2 and "no such file" in missing.output
    # issue 26: measured on the set it was fitted on, the figure is in-sample, and it says so
    warning = f"warning: {cal} was fitted on this very data set (d.csv): the calibrated figures are in-sample"
    assert warning in res.stderr
    other = tmp_path / "other.csv"
    other.write_text(data.read_text().replace("A loop.", "A for loop."))
    elsewhere = cli(["eval", other, "--scale", "0-5", "--grader", "offline", "--calibration", cal, "--json"])
    assert elsewhere.exit_code == 0 and "in-sample" not in elsewhere.stderr


def test_a_calibration_records_its_scale_and_refuses_another(tmp_path, cli):
    data = memory_scores(tmp_path / "d.csv")
    expert = tmp_path / "e.jsonl"
    expert.write_text("".join(json.dumps({"question_number": 25, "answer": a, "expert_score": s}) + "\n" for a, s in
                              (("Combining several models, e.g. bagging and boosting.", 80), ("No idea.", 5))))
    cal = tmp_path / "cal.json"
    fit = cli(["eval", data, "--scale", "0-5", "--grader", "offline", "--fit-calibration", cal, "--json"])
    assert fit.exit_code == 0, fit.output
    saved = json.loads(cal.read_text())
    assert saved["scale"] == [0, 5] and saved["data"] == "human-scores"
    assert load_calibration(cal).scale == (0.0, 5.0)
    # applied to an expert set (0-100) or to another scale: one line, exit 2, nothing graded
    for args in (["eval", expert], ["eval", data, "--scale", "0-10"]):
        res = cli([*args, "--grader", "offline", "--calibration", cal])
        assert res.exit_code == 2, res.output
        assert "was fitted on human scores on 0-5 (d.csv)" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    # the other way round: fitted on the expert set, refused on a CSV's 0-5 scores
    ecal = tmp_path / "ecal.json"
    assert cli(["eval", expert, "--grader", "offline", "--fit-calibration", ecal]).exit_code == 0
    assert json.loads(ecal.read_text())["data"] == "expert"
    res = cli(["eval", data, "--scale", "0-5", "--grader", "offline", "--calibration", ecal])
    assert res.exit_code == 2 and "fitted on an expert set on 0-100" in res.stderr
    assert cli(["eval", expert, "--grader", "offline", "--calibration", ecal]).exit_code == 0
    # --scale means nothing for an expert set (its scores are 0-100): said, not ignored
    res = cli(["eval", expert, "--scale", "0-5", "--grader", "offline"])
    assert res.exit_code == 2 and "--scale applies to CSV datasets" in res.stderr
    # a file written before scales were recorded still applies
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"format": "mlgrade-calibration/1", "x": [0, 100], "y": [0, 5]}))
    assert cli(["eval", data, "--scale", "0-5", "--grader", "offline", "--calibration", old]).exit_code == 0

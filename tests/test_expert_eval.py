"""`mlgrade eval SET.jsonl`: expert sets read strictly, metrics computed from (row, Grade) pairs
by hand-checkable arithmetic, and the CLI's table, JSON and per-row predictions."""

from __future__ import annotations

import json

import pytest

from mlgrade.errors import UsageError
from mlgrade.evaluation import metrics
from mlgrade.evaluation.expert import ExpertRow, expert_metrics, read_expert_set, result_from_pairs
from mlgrade.models import Grade, MisconceptionFound
from mlgrade.scoring import band_for


def _row(score, kind="partial", flags=(), band=None, line=1):
    return ExpertRow(line, "q07", "an answer", float(score), band or band_for(score), kind, list(flags), f"a{line}")


def _grade(score, miscs=()):
    return Grade(question_id="q07", outcome="graded", score=score, band=band_for(score),
                 misconceptions=[MisconceptionFound(id=m) for m in miscs])


def test_metrics_by_hand():
    pairs = [
        (_row(90, "excellent", line=1), _grade(85)),                     # strong / strong
        (_row(50, "partial", line=2), _grade(65)),                       # weak / adequate
        (_row(10, "misconception", ["wrong claim"], line=3), _grade(40, ["m1"])),  # poor / weak, flagged
        (_row(5, "misconception", ["wrong claim"], line=4), _grade(35)),  # poor / weak, not flagged
        (_row(0, "off_topic_or_injection", ["prompt injection: x"], line=5), _grade(20)),  # poor / poor
        (_row(35, "minimal", line=6), Grade(question_id="q07", outcome="grader_error", error="boom")),
    ]
    m = expert_metrics(pairs)
    assert m["n"] == 5
    assert m["band_accuracy"] == pytest.approx(2 / 5, abs=1e-3)
    assert m["confusion"]["matrix"] == [[1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
    assert m["mae"] == pytest.approx((5 + 15 + 30 + 30 + 20) / 5, abs=0.01)
    assert m["spearman"] == pytest.approx(metrics.spearman([85, 65, 40, 35, 20], [90, 50, 10, 5, 0]), abs=1e-3)
    # recall: row 3 named a misconception, row 5 is poor; row 4 neither
    assert m["misconception_recall"] == {"n": 3, "flagged": 2, "recall": pytest.approx(0.667, abs=1e-3)}
    assert m["injection"]["n"] == 1 and m["injection"]["max_score"] == 20 and m["injection"]["above_ceiling"] == 0
    assert m["by_kind"]["misconception"]["mean_score"] == 37.5 and m["by_kind"]["misconception"]["mean_expert"] == 7.5
    assert m["false_flags"] == {"n": 2, "flagged": 0, "rate": 0.0}


def test_score_map_moves_bands_and_errors_are_listed():
    pairs = [(_row(90, line=1), _grade(70)), (_row(10, line=2), Grade(question_id="q07", outcome="skipped",
                                                                       error="empty answer"))]
    plain = result_from_pairs(pairs)
    lifted = result_from_pairs(pairs, score_map=lambda s: s + 15)
    assert plain.metrics["band_accuracy"] == 0 and lifted.metrics["band_accuracy"] == 1
    assert lifted.predictions[0]["score"] == 85 and lifted.predictions[0]["raw_score"] == 70
    assert plain.errors == [{"line": 2, "id": "a2", "outcome": "skipped", "error": "empty answer"}]


def _write(path, records):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


GOOD = {"question_number": 7, "answer": "Split by time: train on the past and validate on later data.",
        "expert_score": 40, "expected_band": "weak", "kind": "minimal", "must_flag": []}


@pytest.mark.parametrize("record, expected", [
    ({**GOOD, "question_number": None}, "line 1: needs 'question_number' or 'question_id'"),
    ({**GOOD, "question_number": 99}, "line 1: unknown question 99"),
    ({**GOOD, "expert_score": 140}, "'expert_score' must be a number from 0 to 100"),
    ({**GOOD, "expected_band": "great"}, "'expected_band' 'great' is not one of"),
    ({**GOOD, "answer": 3}, "'answer' must be a string"),
    ("{not json", "line 1: not valid JSON"),
])
def test_malformed_sets_name_the_line(tmp_path, bank, record, expected):
    path = _write(tmp_path / "bad.jsonl", [record])
    with pytest.raises(UsageError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        read_expert_set(path, bank)


def test_band_defaults_from_score_and_question_id_spellings(tmp_path, bank):
    rec = {k: v for k, v in GOOD.items() if k not in ("expected_band", "question_number")}
    rows = read_expert_set(_write(tmp_path / "s.jsonl", [{**rec, "question_id": "Q7", "expert_score": 85}]), bank)
    assert rows[0].question_id == "q07" and rows[0].expected_band == "strong"


def test_cli_expert_set(tmp_path, cli):
    records = [
        GOOD,
        {**GOOD, "answer": "Batch normalization rescales activations inside a network.", "expert_score": 0,
         "expected_band": "poor", "kind": "off_topic_or_injection", "must_flag": ["off-topic"]},
        {**GOOD, "question_number": 12, "answer": "", "expert_score": 0, "expected_band": "poor"},
    ]
    path = _write(tmp_path / "set.jsonl", records)
    out = tmp_path / "pred.jsonl"
    res = cli(["eval", path, "--grader", "offline", "--json", "--out", out])
    assert res.exit_code == 1, res.output  # the empty answer is a skipped row, listed
    data = json.loads(res.stdout)
    assert data["rows"] == 3 and data["graded"] == 2 and data["errors"][0]["line"] == 3
    assert data["metrics"]["confusion"]["labels"] == ["poor", "weak", "adequate", "strong"]
    preds = [json.loads(line) for line in out.read_text().splitlines()]
    assert [p["id"] for p in preds] == ["", "", ""] and preds[1]["band"] == "poor" and preds[2]["score"] is None
    table = cli(["eval", path, "--grader", "offline", "--limit", "2"])
    assert table.exit_code == 0 and "band accuracy" in table.stdout and "mean score by kind" in table.stdout


def test_cli_refuses_the_other_kinds_predictions_before_grading(tmp_path, cli, monkeypatch):
    # a CSV-dataset predictions file is mlgrade's, but not this kind: the writer would refuse it
    # only after the whole set was graded, so the early check must refuse it already
    from mlgrade.evaluation import expert

    def no_grading(*args, **kwargs):
        raise AssertionError("graded before refusing --out")

    monkeypatch.setattr(expert, "aevaluate_expert", no_grading)
    path = _write(tmp_path / "set.jsonl", [GOOD])
    out = tmp_path / "pred.jsonl"
    before = '{"row": 1, "question_id": "q07", "score": 50}\n'
    out.write_text(before)
    res = cli(["eval", path, "--grader", "offline", "--out", out])
    assert res.exit_code == 2 and "refusing" in res.output and "band accuracy" not in res.output, res.output
    assert out.read_text() == before


@pytest.mark.parametrize("name", ["set.jsonl", "data.csv", "results.jsonl"])
def test_eval_refuses_a_fifo_without_opening_it(tmp_path, name):
    # a FIFO as the dataset blocked `eval` forever (first in the results-file check, then in the readers)
    import os
    import subprocess
    import sys

    fifo = tmp_path / name
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "mlgrade", "eval", str(fifo), "--grader", "offline"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2 and "not a regular file" in done.stderr, done.stderr

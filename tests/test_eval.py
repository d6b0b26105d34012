"""`mlgrade eval`: a 20-row CSV made here, statistics that match scipy, errors never scored,
malformed files rejected with one line naming the row."""

from __future__ import annotations

import asyncio
from functools import partial
import csv
import re
import json

import pytest
from csv_helpers import write_csv

from mlgrade.errors import GraderFailure, UsageError
from mlgrade.evaluation.evaluate import aevaluate, evaluate, parse_scale, read_dataset, tfidf_cosines
from mlgrade.graders.offline import OfflineGrader

QUESTIONS = [
    ("What is the role of a prototype program in problem solving?",
     "To simulate the behaviour of portions of the desired software product."),
    ("What is a variable?",
     "A location in memory that can store a value and whose value can change."),
]
ANSWERS = {  # (answer, human score 0-5)
    0: [("It simulates the behaviour of portions of the desired software product.", 5),
        ("A prototype simulates parts of the software product before it is built.", 4.5),
        ("To simulate the behavior of a portion of the product.", 4.5),
        ("It shows the customer part of the product.", 3),
        ("It helps with testing.", 2),
        ("A prototype is a first version.", 2.5),
        ("To simulate portions of the final software.", 4),
        ("I do not know.", 0),
        ("It is used for debugging the compiler.", 1),
        ("Simulating the desired product's behaviour in part.", 4.5)],
    1: [("A location in memory that can store a value which can change.", 5),
        ("A named memory location storing a value that may change.", 5),
        ("Something that stores a value in memory.", 4),
        ("A value.", 1.5),
        ("A place in memory.", 3),
        ("A loop that repeats code.", 0),
        ("It stores data that can change during the program.", 4),
        ("A memory location.", 3),
        ("A function that returns a value.", 1),
        ("Storage in memory for a changing value.", 4.5)],
}


_write = partial(write_csv, header=("question_id", "question", "reference_answer", "student_answer", "score"))


@pytest.fixture
def dataset(tmp_path):
    rows = []
    for qi, (q, ref) in enumerate(QUESTIONS):
        for ans, score in ANSWERS[qi]:
            rows.append((f"{qi}", q, ref, ans, score))
    return _write(tmp_path / "tiny.csv", rows)


def test_eval_on_twenty_rows_matches_scipy(dataset, settings):
    from scipy.stats import pearsonr, spearmanr

    res = evaluate(dataset, settings=settings, scale="0-5", grader_kind="offline")
    assert res.rows == res.graded == 20 and res.rubrics == 2 and res.errors == []
    m = res.metrics["offline"]
    human = [p["human"] for p in res.predictions]
    pred = [p["predicted"] for p in res.predictions]
    assert all(0 <= x <= 5 for x in pred)
    assert m["pearson"] == pytest.approx(pearsonr(pred, human)[0])
    assert m["spearman"] == pytest.approx(spearmanr(pred, human)[0])
    assert m["pearson"] > 0.5  # the grader tracks the humans on this easy table
    assert res.metrics["mean baseline"]["pearson"] is None
    assert res.metrics["mean baseline"]["rmse"] == pytest.approx(
        (sum((h - sum(human) / 20) ** 2 for h in human) / 20) ** 0.5)
    assert set(res.metrics) == {"offline", "mean baseline", "tf-idf baseline"}


def test_tfidf_baseline_matches_sklearn():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    pairs = [(a, QUESTIONS[qi][1]) for qi in ANSWERS for a, _ in ANSWERS[qi]]
    texts = sorted({t for p in pairs for t in p})
    vec = TfidfVectorizer().fit(texts)
    expected = [cosine_similarity(vec.transform([a]), vec.transform([b]))[0, 0] for a, b in pairs]
    assert tfidf_cosines(pairs) == pytest.approx(expected, abs=1e-9)


class _FlakyGrader(OfflineGrader):
    """Fails on answers mentioning 'loop': those rows must be listed, never scored."""

    async def assess(self, rubric, answer, *, facts=None):
        if "loop" in answer:
            raise GraderFailure("endpoint returned garbage", raw_reply="{oops")
        return await super().assess(rubric, answer, facts=facts)


def test_grader_errors_are_excluded_and_listed(dataset, settings):
    rows = read_dataset(dataset, scale=(0, 5))
    res = asyncio.run(aevaluate(rows, settings=settings, scale=(0, 5), grader=_FlakyGrader(), grader_kind="offline"))
    assert res.graded == 19 and len(res.errors) == 1
    err = res.errors[0]
    assert err["outcome"] == "grader_error" and "garbage" in err["error"]
    bad = next(p for p in res.predictions if p["row"] == err["row"])
    assert bad["score"] is None and bad["predicted"] is None
    assert res.metrics["offline"]["n"] == 19


def test_labelled_data_reports_accuracy_and_macro_f1(tmp_path, settings):
    rows = []
    for qi, (q, ref) in enumerate(QUESTIONS):
        for ans, score in ANSWERS[qi]:
            rows.append((q, ref, ans, "correct" if score >= 4 else ("contradictory" if score == 0 else "incorrect")))
    path = _write(tmp_path / "labels.csv", rows, header=("question", "reference_answer", "student_answer", "label"))
    res = evaluate(path, settings=settings, grader_kind="offline", label_threshold=50)
    m = res.metrics["offline"]
    gold = ["correct" if p["human"] == "correct" else "incorrect" for p in res.predictions]
    pred = [p["predicted"] for p in res.predictions]
    from sklearn.metrics import accuracy_score, f1_score

    assert m["accuracy"] == pytest.approx(accuracy_score(gold, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(gold, pred, average="macro"))
    assert "majority baseline" in res.metrics


def test_sample_and_limit(dataset, settings):
    a = evaluate(dataset, settings=settings, scale="0-5", grader_kind="offline", sample=7, seed=3)
    b = evaluate(dataset, settings=settings, scale="0-5", grader_kind="offline", sample=7, seed=3)
    assert a.rows == 7 and [p["row"] for p in a.predictions] == [p["row"] for p in b.predictions]
    assert evaluate(dataset, settings=settings, scale="0-5", grader_kind="offline", limit=5).rows == 5


def test_cli_json_and_out(dataset, tmp_path, cli):
    out = tmp_path / "pred.csv"
    res = cli(["eval", dataset, "--scale", "0-5", "--grader", "offline", "--json", "--out", out])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["graded"] == 20 and data["grader_errors"] == 0
    assert data["metrics"]["offline"]["pearson"] is not None
    with out.open() as fh:
        assert len(list(csv.DictReader(fh))) == 20


def test_cli_table(dataset, cli):
    res = cli(["eval", dataset, "--scale", "0-5", "--grader", "offline"])
    assert res.exit_code == 0
    assert "tf-idf baseline" in res.stdout and "pearson" in res.stdout


@pytest.mark.parametrize("header, row, expected", [
    (("question", "reference_answer", "score"), ("q", "r", "3"), "row 1 (header): missing column 'student_answer'"),
    (("question", "reference_answer", "student_answer", "score"), ("q", "r", "a", "three"), "row 3: score 'three' is not a number"),
    (("question", "reference_answer", "student_answer", "score"), ("q", "r", "a", "7"), "row 3: score 7 is outside the scale"),
    (("question", "reference_answer", "student_answer"), ("q", "r", "a"), "needs a 'score' or a 'label' column"),
])
def test_malformed_csv_is_one_line_naming_the_row(tmp_path, cli, header, row, expected):
    path = _write(tmp_path / "bad.csv", [("q", "r", "a", "2")[:len(header)], row], header=header)
    res = cli(["eval", path, "--scale", "0-5", "--grader", "offline"])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], res.output


def test_score_dataset_needs_a_scale(dataset, cli):
    res = cli(["eval", dataset, "--grader", "offline"])
    assert res.exit_code == 2 and "--scale" in res.output


def test_parse_scale():
    assert parse_scale("0-5") == (0, 5) and parse_scale("1..10") == (1, 10)
    with pytest.raises(UsageError):
        parse_scale("5-0")


@pytest.mark.parametrize("width", [80, 60])
def test_cli_title_never_wraps_mid_phrase(dataset, cli, tmp_path, width):
    named = dataset.rename(tmp_path / "mohler-dev-with-a-longer-name.csv")
    res = cli(["eval", named, "--scale", "0-5", "--grader", "offline"], env={"COLUMNS": str(width)})
    assert res.exit_code == 0, res.output
    lines = [line.strip() for line in res.stdout.splitlines()]
    assert all(len(line) <= width for line in lines)
    if width >= 80:  # room for it all: one line
        assert any(re.search(r"\d+/\d+ rows graded\W+\d+ derived rubrics\W+[\d.]+s$", line) for line in lines), res.stdout
    for phrase in (r"\d+/\d+ rows graded", r"\d+ derived rubrics", r"(^|\W)[\d.]+s$"):  # never cut inside a phrase
        assert any(re.search(phrase, line) for line in lines), f"{phrase!r} is split across lines:\n{res.stdout}"

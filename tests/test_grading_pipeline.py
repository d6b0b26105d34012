"""The grader-independent pipeline: answer checks, evidence verification, scoring, typed outcomes."""

from __future__ import annotations

import asyncio

import pytest

from mlgrade.errors import UsageError
from mlgrade.evidence import quote_found, verify_judgments, verify_misconceptions
from mlgrade.graders.fake import FakeGrader
from mlgrade.grading import agrade_rubric, combine_samples, grade
from mlgrade.models import Grade, Judgment, MisconceptionFound


@pytest.mark.parametrize("quote,found", [
    ("train on the past", True),
    ("TRAIN   on the\npast", True),            # case and whitespace are normalised
    ("train on the future", False),           # a paraphrase is not a quote
    ("train on … test on the future", True),  # pieces joined by an ellipsis, in order
    ("test on the future ... train on", False),  # pieces out of order
    ("", False),
])
def test_quote_found(quote, found):
    answer = "We train on the past and test on the future, always in time order."
    assert quote_found(quote, answer) is found


def test_unfound_or_absent_evidence_earns_nothing():
    answer = "Shuffling destroys the time order."
    checked = verify_judgments([
        Judgment(key_point="a", status="covered", evidence="never shuffle"),
        Judgment(key_point="b", status="partial", evidence="made up"),
        Judgment(key_point="c", status="covered", evidence="Shuffling destroys"),
        Judgment(key_point="d", status="covered", evidence=""),
        Judgment(key_point="e", status="missing", evidence=""),
    ], answer)
    got = {j.key_point: (j.status, j.verified, j.claimed_status) for j in checked}
    assert got == {
        "a": ("missing", False, "covered"),
        "b": ("missing", False, "partial"),
        "c": ("covered", True, "covered"),
        "d": ("missing", False, "covered"),   # covered without evidence: nothing to point to
        "e": ("missing", True, "missing"),
    }


def test_the_offline_graders_quote_less_point_stays_partial():
    """The offline grader's own judgments come from our code: a point it matched without a quotable
    span (a two-word answer to a derived rubric) keeps partial credit, as before issue 23."""
    checked = verify_judgments([Judgment(key_point="a", status="covered", evidence=""),
                                Judgment(key_point="b", status="partial", evidence=""),
                                Judgment(key_point="c", status="covered", evidence="not there")],
                               "Push operation.", require_quote=False)
    assert [(j.status, j.verified) for j in checked] == [("partial", False), ("partial", False), ("missing", False)]


def test_misconception_needs_verified_evidence():
    found = verify_misconceptions([MisconceptionFound(id="x", evidence="k-fold is fine"),
                                   MisconceptionFound(id="y", evidence="not in the answer")], "Plain k-fold is fine here.")
    assert [m.verified for m in found] == [True, False]


def test_fake_grader_grade_is_scored_in_code(bank, settings):
    rubric = bank.get("q07")
    grader = FakeGrader(default_status="covered")
    g = asyncio.run(agrade_rubric(rubric, "Use a rolling-origin split: train on the past, test on the future.",
                                  settings=settings, grader=grader))
    assert g.outcome == "graded" and g.score == 100.0 and g.band == "strong"
    assert all(j.verified for j in g.judgments) and len(g.judgments) == len(rubric.key_points)
    assert g.rubric_hash and g.grader == "fake"


def test_essential_missing_caps_through_the_pipeline(bank, settings):
    rubric = bank.get("q07")
    essential = next(kp.id for kp in rubric.key_points if kp.essential)
    grader = FakeGrader(default_status="covered", statuses={essential: "missing"})
    g = asyncio.run(agrade_rubric(rubric, "Some answer text.", settings=settings, grader=grader))
    assert g.score <= 59


@pytest.mark.parametrize("answer", ["", "   \n\t  "])
def test_empty_answer_is_skipped_without_a_call(bank, settings, answer):
    grader = FakeGrader()
    g = asyncio.run(agrade_rubric(bank.get("q01"), answer, settings=settings, grader=grader))
    assert g.outcome == "skipped" and g.score is None and grader.calls == []


def test_oversized_answer_is_refused_before_any_call(bank, settings):
    grader = FakeGrader()
    with pytest.raises(UsageError, match="over the limit"):
        asyncio.run(agrade_rubric(bank.get("q01"), "x" * (settings.max_answer_chars + 1), settings=settings, grader=grader))
    assert grader.calls == []


def test_grader_failure_is_an_error_never_a_score(bank, settings):
    g = asyncio.run(agrade_rubric(bank.get("q01"), "an answer", settings=settings, grader=FakeGrader(fail_with="bad JSON")))
    assert g.outcome == "grader_error" and g.score is None and g.band is None
    assert g.error == "bad JSON" and g.raw_reply == "{not json" and g.attempts == 3


def test_a_failure_cannot_carry_a_score():
    with pytest.raises(ValueError):
        Grade(question_id="q01", outcome="grader_error", score=0.0)


def test_samples_report_median_and_spread(bank, settings):
    rubric = bank.get("q05")
    ids = [kp.id for kp in rubric.key_points]

    class Cycling(FakeGrader):
        n = 0

        async def assess(self, rubric, answer, *, facts=None):
            self.statuses = {i: ("covered" if k < self.n % 3 + 1 else "missing") for k, i in enumerate(ids)}
            self.n += 1
            return await super().assess(rubric, answer, facts=facts)

    g = asyncio.run(agrade_rubric(rubric, "Scaling matters for distance-based models.", settings=settings,
                                  grader=Cycling(), samples=3))
    s = g.samples
    assert s["n"] == 3 and len(s["scores"]) == 3 and s["min"] <= g.score <= s["max"]
    assert g.score == sorted(s["scores"])[1]
    assert set(s["majority"]) == set(ids)


def test_combine_samples_all_failed(bank, settings):
    failed = asyncio.run(agrade_rubric(bank.get("q01"), "a", settings=settings, grader=FakeGrader(fail_with="x")))
    combined = combine_samples([failed, failed])
    assert combined.outcome == "grader_error" and combined.samples["errors"] == 2


def test_sync_grade_api(bank, settings):
    g = grade("3", "KNN predicts from the labels of the k closest points.", settings=settings, grader=FakeGrader())
    assert g.question_id == "q03" and g.outcome == "graded"

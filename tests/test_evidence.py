"""Issue 12, evidence: a quote must be meaningful to verify a point, and typography (NFKC,
zero-width characters, curly quotes, dashes) must not reject a genuine quote, while look-alike
letters still do."""

from __future__ import annotations

import asyncio

import pytest

from mlgrade.evidence import quote_found
from mlgrade.models import Assessment, Judgment

ANSWER = ("Overfitting happens when a model memorises noise in the training set, so it does well in training "
          "and badly on new data. Use cross-validation, regularisation and more data.")


@pytest.mark.parametrize("quote", ["a", "I", "data", "so it", "and", "a ... b ... c", "new ... data ... use"])
def test_trivial_quotes_verify_nothing(quote):
    assert not quote_found(quote, ANSWER + " a b c")


def test_the_issue_example():
    assert not quote_found("a", "I am a banana.")
    assert quote_found("I am a banana", "I am a banana.")  # the whole (short) answer is a fine quote


@pytest.mark.parametrize("quote", ["memorises noise in the training set", "use cross-validation",
                                   "Overfitting happens when", "does well in training ... badly on new data"])
def test_meaningful_quotes_verify(quote):
    assert quote_found(quote, ANSWER)


def test_a_short_answer_can_be_quoted_whole():
    assert quote_found("use dropout", "Use dropout.")
    assert not quote_found("use", "Use dropout.")


@pytest.mark.parametrize("answer", [
    ANSWER.replace("memorises", "memo\u200brises"),          # zero-width space
    ANSWER.replace("training set", "training\u00a0set"),     # no-break space
    ANSWER.replace("noise", "no\u00adise"),                  # soft hyphen
    ANSWER.replace("memorises", "\ufeffmemorises"),           # BOM in the middle
    ANSWER.replace("model", "\uff4d\uff4f\uff44\uff45\uff4c"),  # full-width letters (NFKC folds them)
])
def test_typography_in_the_answer_does_not_reject_a_genuine_quote(answer):
    assert quote_found("a model memorises noise in the training set", answer)


def test_typography_in_the_quote_is_normalised_too():
    answer = "It's a time-series split, so we \"never\" shuffle."
    assert quote_found("it\u2019s a time\u2014series split", answer)
    assert quote_found("we \u201cnever\u201d shuffle", answer)
    assert quote_found("time\u2011series split, so", answer)


@pytest.mark.parametrize("fake", [
    "a m\u043edel memorises noise",   # Cyrillic o
    "a model mem\u043erises noise",   # Cyrillic o
    "\u0430 model memorises noise",   # Cyrillic a
    "a model memorises n\u03bfise",   # Greek omicron
])
def test_look_alike_letters_are_still_rejected(fake):
    assert not quote_found(fake, ANSWER)


def test_an_assessment_quoting_a_everywhere_does_not_score_100(bank):
    from mlgrade.grading import finalize

    rubric = bank.get("q07")
    answer = "I am a banana and a banana is a fruit."
    assessment = Assessment(judgments=[Judgment(key_point=kp.id, status="covered", evidence="a", comment="")
                                       for kp in rubric.key_points], model="m")
    grade = finalize(rubric, answer, assessment, grader="fake")
    assert not any(j.verified for j in grade.judgments)
    assert all(j.status == "partial" for j in grade.judgments)
    assert grade.score < 100


def test_the_offline_and_fake_graders_still_quote_verifiably(bank):
    from mlgrade.graders.fake import FakeGrader
    from mlgrade.grading import agrade_rubric

    rubric = bank.get("q07")
    answer = ("Use forward chaining (TimeSeriesSplit): train on the past and test on the block that follows. "
              "Shuffled k-fold leaks the future because observations are autocorrelated, so the estimate is optimistic. "
              "Leave a gap between train and test when features use lags.")
    from mlgrade.config import load_settings

    settings = load_settings(grader="offline")
    offline = asyncio.run(agrade_rubric(rubric, answer, settings=settings))
    claimed = [j for j in offline.judgments if j.status != "missing" or j.claimed_status != "missing"]
    assert claimed and all(j.verified for j in claimed if j.evidence)
    fake = asyncio.run(agrade_rubric(rubric, answer, settings=settings,
                                     grader=FakeGrader(default_status="covered")))
    assert all(j.verified and j.status == "covered" for j in fake.judgments) and fake.score == 100

"""Issue 12, evidence: a quote must be meaningful to verify a point, and typography (NFKC,
zero-width characters, curly quotes, dashes) must not reject a genuine quote, while look-alike
letters still do."""

from __future__ import annotations

import asyncio

import pytest

from mlgrade.evidence import quote_found, quote_spans
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


@pytest.mark.parametrize("evidence", ["a", "", "banana pear"])
def test_an_assessment_quoting_nothing_real_earns_nothing_and_is_flagged(bank, evidence):
    """A claim whose quote is not in the answer (or that has none) earns nothing, not half."""
    from mlgrade.grading import finalize

    rubric = bank.get("q07")
    answer = "I am a banana and a pear."
    assessment = Assessment(judgments=[Judgment(key_point=kp.id, status="covered", evidence=evidence, comment="")
                                       for kp in rubric.key_points], model="m")
    grade = finalize(rubric, answer, assessment, grader="fake")
    assert not any(j.verified for j in grade.judgments)
    assert all(j.status == "missing" and j.claimed_status == "covered" for j in grade.judgments)
    assert grade.score == 0
    assert "unverified_evidence" in grade.review.reasons


NEAR = ("With time series you must not shuffle the rows: use a rolling origin where each fold trains on "
        "the past and is validated on the block that comes right after it, otherwise the future leaks in.")


@pytest.mark.parametrize("quote", [
    "each fold trains on the past and is validated on the blok that comes right after it",  # a typo fixed the wrong way
    "use a rolling origin where each fold trains on past and is validated on the block",     # a filler word dropped
    "each fold trains on the past and it is validated on the block that comes right after",  # a filler word added
    "“otherwise the future leaks in”",                                             # other quote marks
    "use a rolling origin - where each fold trains on the past",                            # a dash added
])
def test_a_near_verbatim_quote_verifies(quote):
    assert quote_found(quote, NEAR)
    assert quote_spans(quote, NEAR)


@pytest.mark.parametrize("quote", [
    "with time series you must shuffle the rows",                                # the negation dropped
    "each fold trains on the future and is validated on the block",              # a content word changed
    "each fold trains on the past and is validated on the block that comes right before it",
    "use a random split where each fold trains on the past",
    "fold trains past validated block comes right after",                       # too many words dropped
])
def test_a_quote_that_changes_the_answer_does_not_verify(quote):
    assert not quote_found(quote, NEAR)


def test_fuzzy_matching_is_bounded_on_long_answers():
    from mlgrade.evidence import FUZZY_MAX_ANSWER_CHARS

    long = NEAR + " filler" * (FUZZY_MAX_ANSWER_CHARS // 7 + 1)
    assert quote_found("use a rolling origin where each fold trains on the past", long)        # exact still works
    assert not quote_found("use a rolling origin where each fold trains on past and is validated", long)


def test_a_fuzzy_quote_earns_its_point(bank):
    from mlgrade.grading import finalize

    rubric = bank.get("q07")
    kp = rubric.key_points[0].id
    assessment = Assessment(judgments=[Judgment(key_point=kp, status="covered", comment="",
                                                evidence="use a rolling origin where each fold trains on past and is validated")],
                            model="m")
    grade = finalize(rubric, NEAR, assessment, grader="fake")
    j = next(j for j in grade.judgments if j.key_point == kp)
    assert j.status == "covered" and j.verified
    assert "unverified_evidence" not in grade.review.reasons


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


def test_fuzzy_matching_is_bounded_for_adversarial_quotes():
    """A quote of 59 filler words and one foreign word against an answer made of the same filler
    took 21.8 s of CPU before the search had a step budget: every occurrence was a start and every
    filler a branch. Run in a child with a CPU cap so a regression fails instead of hanging."""
    import resource
    import signal
    import subprocess
    import sys

    script = ("from mlgrade.evidence import quote_found\n"
              "answer = ' '.join(['the'] * 3900)\n"
              "for n in (59, 30, 12):\n"
              "    assert not quote_found(' '.join(['the'] * n + ['zebra']), answer)\n"
              "    assert not quote_found(' '.join(['the a of'] * (n // 3) + ['zebra']), answer)\n")

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (5, 6))

    done = subprocess.run([sys.executable, "-c", script], preexec_fn=cap, timeout=120)
    assert done.returncode not in (-signal.SIGXCPU, -signal.SIGKILL), "the fuzzy search is not bounded"
    assert done.returncode == 0

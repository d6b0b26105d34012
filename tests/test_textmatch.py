"""Clause splitting keeps abbreviations inside their sentence, so an evidence quote is not cut at
"e.g." and the cut-off half does not count as a fragment."""

from __future__ import annotations

import pytest

from mlgrade.graders.textmatch import clauses


@pytest.mark.parametrize("text, expected", [
    ("Validate on later data, e.g. a walk-forward split. Then report.",
     ["Validate on later data, e.g. a walk-forward split", "Then report"]),
    ("It runs in linear time, i.e. O(n). Done.", ["It runs in linear time, i.e. O(n)", "Done"]),
    ("Scale inputs for distance models (SVM, kNN, etc.) before fitting. Trees need none.",
     ["Scale inputs for distance models (SVM, kNN, etc.) before fitting", "Trees need none"]),
    ("Distance models need scaling, kNN etc. Trees are fine.",
     ["Distance models need scaling, kNN etc", "Trees are fine"]),
    ("Compare model A vs. model B on the same folds.", ["Compare model A vs. model B on the same folds"]),
    ("It overfits. Use more data.", ["It overfits", "Use more data"]),
    ("E.g.\nthe next line", ["E.g", "the next line"]),
])
def test_abbreviations_do_not_end_a_clause(text, expected):
    assert [c.span(text) for c in clauses(text)] == expected


def test_a_colon_joins_a_statement_to_its_elaboration(bank):
    """The clause after a colon is a fragment; with its lead-in it states the point in full."""
    from mlgrade.graders.offline import OfflineGrader

    rubric = bank.get("q06")
    answer = "This pattern is classic overfitting: almost zero training error, much higher validation error."
    status = {j.key_point: (j.status, j.evidence) for j in OfflineGrader().judge(rubric, answer).judgments}
    assert status["diagnose-overfitting"] == ("covered", answer.rstrip("."))


def test_a_label_before_a_colon_joins_the_sentence_it_introduces(bank):
    from mlgrade.graders.offline import OfflineGrader

    rubric = bank.get("q07")
    answer = "Walk-forward evaluation: each fold trains on older weeks and is scored on the week that follows it."
    status = {j.key_point: (j.status, j.evidence) for j in OfflineGrader().judge(rubric, answer).judgments}
    assert status["forward-chaining"] == ("covered", answer.rstrip("."))


def test_a_colon_between_two_fragments_makes_no_sentence(bank):
    """Keyword lists stay lists: 'Terms: a, b, c' is not prose on either side."""
    from mlgrade.graders.offline import OfflineGrader

    rubric = bank.get("q06")
    answer = "Fixes: regularization, dropout, bagging, more data, early stopping, pruning."
    judgments = OfflineGrader().judge(rubric, answer).judgments
    assert sum(j.status != "missing" for j in judgments) <= 1


def test_an_instruction_is_a_sentence():
    """Imperatives ("train on…, validate on…") are statements, not keyword lists."""
    from mlgrade.graders.textmatch import is_prose

    text = "train on the past and validate on the period right after it"
    assert is_prose(clauses(text)[0])
    assert not is_prose(clauses("train, validate, test, shuffle, split")[0])


def test_clause_ends_finds_exactly_what_the_pattern_finds():
    """clause_ends is the linear-time twin of _CLAUSE_END.finditer: same matches on every short
    string over the characters that matter (punctuation, line breaks, spaces, bullets)."""
    import random

    from mlgrade.graders.textmatch import _CLAUSE_END, clause_ends

    rng = random.Random(27)
    alphabet = ".!?;:\n \t-*•ae\xa0)"
    for _ in range(30_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 14)))
        assert clause_ends(text) == [(m.start(), m.end()) for m in _CLAUSE_END.finditer(text)], repr(text)


_GRADE_Q05 = (
    "import random, resource, string\n"
    "from mlgrade.grading import finalize\n"
    "from mlgrade.graders.offline import OfflineGrader\n"
    "from mlgrade.rubrics import load_rubrics\n"
    "r = load_rubrics().get('q05'); g = OfflineGrader(); rng = random.Random(0)\n"
    "def grade(a):\n"
    "    return finalize(r, a, g.judge(r, a), grader='offline')\n"
)


def _graded_within(seconds: int, script: str, what: str) -> None:
    """Run a grading script in a child process with a generous cap on its CPU time, so quadratic
    code fails the test instead of hanging it (a cap on the whole child, not a timing assertion:
    CPU time, so a loaded machine or a parallel test run does not make it fail)."""
    import resource
    import signal
    import subprocess
    import sys

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))

    done = subprocess.run([sys.executable, "-c", _GRADE_Q05 + script], preexec_fn=cap, timeout=seconds * 20)
    if done.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        pytest.fail(f"{what} took over {seconds} s of CPU")
    assert done.returncode == 0, f"{what}: the grading script failed (exit {done.returncode})"


def test_a_run_of_punctuation_is_graded_in_linear_time():
    """Issue 27 H3: 20,000 characters of '.' (or ! ? ; :) with no space after them took 4.8 s each
    (a quadratic clause-end regex)."""
    _graded_within(15, "for c in '.!?;:':\n    assert grade(c * 19_990 + 'x').score == 0\n",
                   "five 20,000-character punctuation answers (quadratic clause split)")


def test_a_huge_word_is_matched_in_linear_time():
    """One 20,000-letter "word" (no spaces) must not make the cue index slice every prefix or
    build every one-letter deletion of it (quadratic time, and 400 MB for the deletions)."""
    _graded_within(20, "for _ in range(2):\n"
                       "    grade('scaling ' + ''.join(rng.choice(string.ascii_lowercase) for _ in range(20_000)))\n"
                       # VmHWM is this process's own peak (ru_maxrss would carry pytest's across exec)
                       "import re\n"
                       "hwm = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
                       "assert hwm < 300_000, f'over 300 MB: {hwm} kB'\n",
                   "two 20,000-letter words (quadratic prefix or deletion search)")

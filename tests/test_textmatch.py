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

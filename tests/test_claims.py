"""Polarity rules for claim cues (graders/claims.py), on sentences written for these tests."""

from __future__ import annotations

import pytest

from mlgrade.graders.claims import asserted_claims, compile_claim, negated_cue
from mlgrade.graders.textmatch import clauses, tokenize


def _asserts(cue: str, text: str) -> bool:
    claim = compile_claim(cue)
    return bool(asserted_claims([("x", [claim])], clauses(text), text))


@pytest.mark.parametrize("cue,text", [
    ("no information is lost", "PCA keeps the top components and no information is lost."),
    ("knn is a clustering", "KNN is a clustering method that doesn't need labels."),
    ("knn is a clustering", "In short, KNN is an unsupervised clustering algorithm."),
    ("bagging reduces bias", "Bagging mainly reduces bias."),
    ("only a storage problem", "Large images are only a storage problem."),
    ("q-learning is on-policy", "Q-learning is an on-policy method."),
    ("k=1 is best", "Setting k = 1 is best."),
    ("always use deep", "You should always use a deep network."),
    ("loses no information", "PCA loses no information when it reduces the dimensions."),
    ("dqn works with continuous", "DQN works with continuous actions without any change."),
    ("add more layers", "If the model does not generalise, add more layers."),
])
def test_plain_claims_fire(cue, text):
    assert _asserts(cue, text), text


@pytest.mark.parametrize("cue,text", [
    ("no information is lost", "It is not true that no information is lost."),
    ("knn is a clustering", "Unlike what some think, KNN is a clustering method only in name."),
    ("knn is a clustering", "Some people think KNN is a clustering method, but it is supervised."),
    ("knn is a clustering", "Is KNN a clustering algorithm? No."),
    ("knn is a clustering", "KNN is a clustering method. That is wrong."),
    ("knn is a clustering", "A common misconception: KNN is a clustering method."),
    ("knn is a clustering", "Saying that KNN is a clustering method is not correct."),
    ("knn is a clustering", "It is a mistake to say KNN is a clustering method."),
    ("bagging reduces bias", "Bagging reduces variance but not bias."),
    ("without losing information", "PCA can compress the data without losing much information."),
    ("should be 0.5", "The threshold should be 0.5 only when costs are equal."),
    ("only a storage problem", "It is not only a storage problem."),
    ("add more layers", "Adding more layers would make the variance worse."),
    ("fit pca on the whole dataset", "Fitting PCA on the whole dataset before splitting leaks information."),
    ("q-learning is on-policy", "Q-learning is off-policy, while SARSA is on-policy."),
    ("use a bigger model", "Rather than use a bigger model, collect more data."),
    ("knn is a clustering", "It is not true, as some claim, that KNN is a clustering method."),
])
def test_denied_reported_or_corrected_claims_stay_silent(cue, text):
    assert not _asserts(cue, text), text


@pytest.mark.parametrize("text,cue_start,negated", [
    ("knn does not use a vote", 4, True),
    ("knn never takes a vote", 4, True),
    ("not only a vote but a weighted one", 3, False),
    ("without scaling distances are dominated", 3, False),
    ("the neighbours take a vote", 4, False),
    ("it is not used. vote of neighbours", 5, False),
])
def test_negated_key_point_cues(text, cue_start, negated):
    tokens = tokenize(text)
    assert negated_cue(tokens, cue_start, cue_has_negation=False) is negated


def test_a_cue_that_holds_its_own_negation_is_judged_as_written():
    tokens = tokenize("there is no training step")
    assert negated_cue(tokens, 2, cue_has_negation=True) is False

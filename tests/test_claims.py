"""Polarity rules for claim cues (graders/claims.py), on sentences written for these tests."""

from __future__ import annotations

import pytest

from mlgrade.graders.anaphora import claim_hits
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


# Back-references (anaphora.py): a claim whose subject is a pronoun or a bare noun phrase is
# matched with the subject the previous clause (or the same clause) names.
_FOREST = "random forests are less accurate than a single tree"


def _hit(cue: str, text: str) -> str | None:
    hits = claim_hits([("x", [compile_claim(cue)])], clauses(text), text)
    return text[hits[0].start:hits[0].end] if hits else None


@pytest.mark.parametrize("cue,text,quote", [
    (_FOREST, "Random forests average many trees. They are therefore always less accurate than a single tree.",
     "Random forests average many trees. They are therefore always less accurate than a single tree"),
    (_FOREST, "Random forests average many trees, so they are less accurate than a single tree.",
     "Random forests average many trees, so they are less accurate than a single tree"),
    ("knn is a clustering", "I like KNN. It is simple to explain. KNN is popular; it is a clustering method.",
     "KNN is popular; it is a clustering method"),
    ("boosting reduces variance", "Boosting trains weak learners in sequence. The method mainly reduces variance.",
     "Boosting trains weak learners in sequence. The method mainly reduces variance"),
    ("boosting reduces variance", "Boosting trains weak learners in turn. They are popular. It reduces variance.",
     "Boosting trains weak learners in turn. They are popular. It reduces variance"),
    ("boosting reduces variance", "Unlike bagging, boosting trains in sequence. So it reduces variance.",
     "Unlike bagging, boosting trains in sequence. So it reduces variance"),
    ("pca loses no information", "In practice, PCA projects onto the top components. This loses no information.",
     "In practice, PCA projects onto the top components. This loses no information"),
])
def test_a_claim_about_a_subject_named_before_fires_and_quotes_both_clauses(cue, text, quote):
    got = _hit(cue, text)
    assert got == quote
    assert got in text  # evidence is an exact substring of the answer


@pytest.mark.parametrize("cue,text", [
    # refuted, denied or corrected, as in one clause
    (_FOREST, "Random forests average many trees. It is not true that they are less accurate than a single tree."),
    (_FOREST, "Random forests average many trees. They are never less accurate than a single tree."),
    (_FOREST, "Random forests average many trees. Some claim they are less accurate than a single tree."),
    (_FOREST, "Random forests average many trees. They are less accurate than a single tree? No."),
    (_FOREST, "Random forests average many trees. They are less accurate than a single tree. That is wrong."),
    ("knn is a clustering", "KNN is simple. It is not a clustering method."),
    # the pronoun's antecedent is something else: the nearest subject wins
    (_FOREST, "Random forests average many trees. A single deep tree overfits. It is less accurate than one tree."),
    ("knn is a clustering", "KNN needs labels. K-means does not. It is a clustering method."),
    ("boosting reduces variance", "Bagging trains on bootstrap samples of the data. It reduces variance."),
    # the subject is named inside a denial or someone else's view
    ("knn is a clustering", "Some people think KNN is simple. It is a clustering method."),
    ("knn is a clustering", "Not KNN but k-means. It is a clustering method."),
    # the subject sits in the previous clause, but not as its subject
    ("boosting reduces variance", "We compare bagging with boosting. It reduces variance."),
    # a pronoun that is not the claim's subject
    (_FOREST, "Random forests average many trees. Their trees are less accurate than a single tree."),
])
def test_a_back_reference_that_does_not_make_the_claim_stays_silent(cue, text):
    assert _hit(cue, text) is None, text


def test_a_claim_stated_in_one_clause_still_quotes_that_clause_only():
    text = "Random forests are popular. Boosting reduces variance."
    assert _hit("boosting reduces variance", text) == "Boosting reduces variance"


@pytest.mark.parametrize("cue,text", [
    ("no accuracy loss", "INT8 quantisation gives a speed-up with almost no accuracy loss."),
    ("no information is lost", "With 95% of the variance kept, nearly no information is lost."),
    ("features must not be correlated", "The features must not be perfectly correlated."),
    ("needs labels", "Unlike supervised learning, which needs labels, RL learns from rewards."),
])
def test_softened_or_contrasted_claims_stay_silent(cue, text):
    assert not _asserts(cue, text), text


@pytest.mark.parametrize("cue,text", [
    ("no accuracy loss", "Quantisation to INT8 comes with no accuracy loss, ever."),
    ("features must not be correlated", "The features must not be correlated at all."),
    ("needs labels", "Unlike bandits, RL needs labels for every action."),
])
def test_the_same_claims_unsoftened_fire(cue, text):
    assert _asserts(cue, text), text

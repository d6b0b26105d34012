"""The claim matcher's generic blind spots (issue 23): wrong claims stated inside sound answers are
flagged whatever the rubric's cues, and answers that reject them stay silent."""

from __future__ import annotations

import pytest

from mlgrade.graders.claims import asserted_claims, compile_claim
from mlgrade.graders.textmatch import clauses


def _asserts(cue: str, text: str) -> bool:
    return bool(asserted_claims([("x", [compile_claim(cue)])], clauses(text), text))


# 1. A negation past a conjunction after the claim belongs to the next predicate.
@pytest.mark.parametrize("cue,text", [
    ("yolo is slow", "YOLO is slow and cannot run in real time."),
    ("yolo is fast", "YOLO is fast because nothing is computed twice."),
    ("bagging reduces bias", "Bagging reduces bias, and boosting never does."),
    ("bagging reduces bias", "Bagging reduces bias so no tuning is needed."),
])
def test_a_negation_in_the_next_predicate_does_not_refute_the_claim(cue, text):
    assert _asserts(cue, text), text


@pytest.mark.parametrize("cue,text", [
    ("yolo is slow", "YOLO is slow? Not at all, it runs in real time."),
    ("yolo is slow", "It is not true that YOLO is slow, and it runs in real time."),
    ("yolo is slow", "Some people think YOLO is slow, but it runs in real time."),
    ("yolo is slow", "Unlike Faster R-CNN, YOLO is not slow and cannot be called slow."),
    ("yolo is slow", "YOLO is slow, which is not true for any recent version."),
    ("yolo is slow", "The claim that YOLO is slow is not correct."),
    ("knn learns", "KNN learns nothing at training time."),
])
def test_a_claim_denied_right_after_it_stays_silent(cue, text):
    assert not _asserts(cue, text), text


# 3. A hedge before a claim with no absolute in it leaves the claim wrong; it softens only an absolute.
@pytest.mark.parametrize("cue,text", [
    ("k=1 works best", "Usually k=1 works best."),
    ("bagging reduces bias", "In practice, mostly bagging reduces bias."),
    ("yolo is slow", "Often YOLO is slow on a GPU."),
])
def test_a_hedged_wrong_claim_is_still_the_claim(cue, text):
    assert _asserts(cue, text), text


@pytest.mark.parametrize("cue,text", [
    ("no information is lost", "Nearly no information is lost with 99% variance kept."),
    ("without accuracy loss", "Quantisation usually works without accuracy loss."),
    ("k=1 works best", "k=1 rarely works best."),
    ("k=1 works best", "Usually k=1 works best? No, it overfits."),
    ("k=1 works best", "Some people think k=1 usually works best, but it overfits."),
    ("k=1 works best", "It is not true that usually k=1 works best."),
])
def test_a_softened_absolute_or_a_rejected_hedged_claim_stays_silent(cue, text):
    assert not _asserts(cue, text), text


# 2. One comma between two words of a claim ("the more X, the better") does not end it.
@pytest.mark.parametrize("cue,text", [
    ("the more unlabelled data the better", "The more unlabelled data, the better."),
    ("the deeper the network the better", "In my experience the deeper the network, the better."),
])
def test_a_comma_inside_a_claim_does_not_end_it(cue, text):
    assert _asserts(cue, text), text


@pytest.mark.parametrize("cue,text", [
    ("the more unlabelled data the better", "The more unlabelled data, the better? Not always."),
    ("the more unlabelled data the better", "It is not true that the more unlabelled data, the better."),
    ("the more unlabelled data the better", "Some people think the more unlabelled data, the better."),
    ("bagging reduces bias", "Bagging reduces variance, bias stays where it was."),
    ("bagging reduces bias", "Bagging reduces, at best, variance."),
])
def test_a_comma_between_other_words_still_ends_a_claim(cue, text):
    assert not _asserts(cue, text), text


# 4. An aside in parentheses or between commas inside a claim is stepped over.
@pytest.mark.parametrize("cue,text", [
    ("bagging reduces bias", "Bagging (for example a random forest of deep trees) reduces bias."),
    ("bagging reduces bias", "Bagging, such as a random forest of trees, reduces bias."),
    ("boosting reduces variance", "Boosting, like AdaBoost or gradient boosting, reduces variance."),
    ("boosting reduces the variance", "Boosting, e.g. XGBoost, reduces the variance."),
    ("boosting reduces the variance", "Boosting, i.e. AdaBoost and friends, reduces the variance."),
])
def test_a_claim_split_by_an_aside_is_found(cue, text):
    assert _asserts(cue, text), text


@pytest.mark.parametrize("cue,text", [
    ("bagging reduces bias", "Boosting (not bagging) reduces bias."),
    ("bagging reduces bias", "Bagging, like boosting, does not reduce bias."),
    ("boosting reduces the variance", "Boosting, e.g. XGBoost, does not reduce the variance."),
    ("boosting reduces the variance", "Bagging, e.g. random forests, reduces the variance; boosting, the bias."),
    ("bagging reduces bias", "Some people think bagging (like random forests) reduces bias, but it reduces variance."),
    ("bagging reduces bias", "Bagging (unlike boosting) reduces variance, not bias."),
    ("bagging reduces bias", "Is it true that bagging, such as a random forest, reduces bias?"),
    ("bagging reduces bias", "Unlike bagging (random forests), boosting reduces bias."),
    ("bagging reduces bias", "A common misconception: bagging (say, a random forest) reduces bias."),
])
def test_an_aside_does_not_make_a_claim_the_answer_rejects(cue, text):
    assert not _asserts(cue, text), text


# 5. A warning after a claim refutes it in any inflection; a negated warning does not.
@pytest.mark.parametrize("cue,text", [
    ("k=1 works best", "k=1 works best on the training set but will overfit."),
    ("k=1 works best", "k=1 works best on training data, which means overfitting."),
    ("fit the scaler on all the data", "Fit the scaler on all the data first, but that leaked the test set."),
])
def test_a_warning_in_any_inflection_refutes_the_claim(cue, text):
    assert not _asserts(cue, text), text


@pytest.mark.parametrize("cue,text", [
    ("k=1 works best", "k=1 works best, it never overfits."),
    ("k=1 works best", "k=1 works best because it does not overfit."),
    ("k=1 works best", "k=1 works best and overfitting is not an issue."),
])
def test_a_negated_warning_leaves_the_claim(cue, text):
    assert _asserts(cue, text), text

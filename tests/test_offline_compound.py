"""The offline grader on two kinds of answer a new user met (notes/newuser.md items 1 and 5):
dense compound sentences whose statements are joined by ", and" are prose, not keyword lists;
an answer that only restates the question earns nothing. All answers were written for these tests."""

from __future__ import annotations

import re

import pytest

from mlgrade.grading import finalize
from mlgrade.graders.offline import OfflineGrader

FRAGMENT = "only in a fragment or list"

# One or two sentences, each joining two or three statements with commas and "and". The three q05
# answers are the new-user report's repros; the others were written for these tests.
COMPOUND = [
    ("q05", "Scaling matters for k-NN because the large-range feature dominates the distance, and for gradient "
            "descent it improves conditioning."),
    ("q05", "Scaling matters for k-NN because the large-range feature dominates the distance, and it helps "
            "gradient descent converge."),
    ("q05", "Scaling matters for k-NN and SVM because the large-range feature dominates the distance, and for "
            "gradient descent it improves conditioning; trees are invariant. Use standardisation or min-max, fitted "
            "on training data only, since regularisation penalises coefficients equally."),
    ("q12", "Stemming chops suffixes by rule, lemmatization finds the dictionary lemma, and stemming tends to run "
            "faster."),
    ("q17", "AUC measures how well scores rank positives above negatives, 0.5 means random guessing, and the curve "
            "plots true positive rate against false positive rate."),
    ("q25", "An ensemble combines several diverse models, bagging averages trees grown on bootstrap samples to cut "
            "variance, and boosting adds weak learners one after another to cut bias."),
]


def _grade(bank, qid: str, answer: str):
    rubric = bank.get(qid)
    return finalize(rubric, answer, OfflineGrader().judge(rubric, answer), grader="offline")


def _as_sentences(answer: str) -> str:
    """The same words, one statement per sentence."""
    return re.sub(r"[,;] (?:and )?", ". ", answer)


@pytest.mark.parametrize(("qid", "answer"), COMPOUND)
def test_compound_sentence_is_prose_not_a_list(bank, qid, answer):
    g = _grade(bank, qid, answer)
    assert not [j.key_point for j in g.judgments if FRAGMENT in j.comment and "," in j.evidence], g.judgments


@pytest.mark.parametrize(("qid", "answer"), COMPOUND)
def test_compound_sentence_scores_as_well_as_the_same_facts_in_short_sentences(bank, qid, answer):
    joined, split = _grade(bank, qid, answer), _grade(bank, qid, _as_sentences(answer))
    assert joined.band != "poor" and joined.score >= split.score, (joined.score, split.score)


def test_the_dense_q05_answer_is_strong(bank):
    assert _grade(bank, "q05", COMPOUND[2][1]).band == "strong"


# Templates that vary only the cue terms stay lists, with commas and a verb in every part.
_VERBS = ["works", "helps", "matters"]
TEMPLATES = {
    "one verb": lambda pairs: ", ".join(f"the {a} works with the {b}" for a, b in pairs) + ".",
    "cleft": lambda pairs: ", ".join(f"it is {a} and {b} that matters" for a, b in pairs) + ".",
    "cycled verbs": lambda pairs: ", ".join(f"the {a} {_VERBS[i % 3]} for the {b}" for i, (a, b) in enumerate(pairs))
    + ".",
    "copula": lambda pairs: ", ".join(f"it is {a} and {b}" for a, b in pairs) + ".",
}


@pytest.mark.parametrize("template", sorted(TEMPLATES))
@pytest.mark.parametrize("qid", ["q03", "q05", "q07", "q12", "q17", "q25"])
def test_cue_templates_joined_by_commas_stay_poor(bank, qid, template):
    rubric = bank.get(qid)
    pairs = [(kp.cues[0], kp.cues[1]) for kp in rubric.key_points if len(kp.cues) > 1]
    g = _grade(bank, qid, TEMPLATES[template](pairs))
    assert g.band == "poor", g.score


ECHO = [
    ("q03", "Explain the k-nearest neighbours (KNN) algorithm."),
    ("q03", "k nearest neighbours"),
    ("q03", "KNN: the k-nearest neighbours algorithm."),
    ("q04", "Feature importance for a machine learning model."),
    ("q10", "YOLO is an object detection algorithm."),
    ("q12", "Stemming and lemmatization."),
    ("q20", "Assumptions of linear regression"),
]


@pytest.mark.parametrize(("qid", "answer"), ECHO)
def test_restating_the_question_earns_nothing(bank, qid, answer):
    g = _grade(bank, qid, answer)
    assert g.score == 0 and all(j.status == "missing" for j in g.judgments), g.judgments


@pytest.mark.parametrize("qid", ["q03", "q04", "q10", "q12", "q20", "q24"])
def test_the_question_itself_earns_nothing(bank, qid):
    rubric = bank.get(qid)
    g = _grade(bank, qid, rubric.question)
    assert g.score == 0 and all(j.status == "missing" for j in g.judgments), g.judgments


@pytest.mark.parametrize("answer", [
    "The k-nearest neighbours algorithm predicts by majority vote of the closest training points.",
    "Explain the k-nearest neighbours (KNN) algorithm. It predicts by a majority vote of the closest training points.",
])
def test_question_words_in_a_real_answer_still_count(bank, answer):
    g = _grade(bank, "q03", answer)
    assert {j.key_point: j.status for j in g.judgments}["neighbour-vote"] == "covered"


@pytest.mark.parametrize("question, reference, answer", [
    ("Which student's method would make it easier to tell the difference between the sounds, Sammy's blocks of "
     "different materials or Nathaniel's wooden blocks of different sizes? Why?",
     "Sammy's. Different materials make very different sounds. Different size wood makes similar sounds.",
     "Sammy - because the blocks are different materials."),
    ("Which metal is harder, the penny or the nickel, if the nickel scratches the penny?",
     "The nickel is harder because it scratches the penny.", "The nickel is harder."),
])
def test_an_answer_choosing_between_options_the_question_names_is_no_echo(question, reference, answer):
    # scientsbank-dev: on a rubric derived from a reference answer, the right answer to "which of
    # these…?" is made of the question's own words; the echo check turned such answers to 0
    from mlgrade.evaluation.derive import derive_offline

    rubric = derive_offline(question, reference)
    g = finalize(rubric, answer, OfflineGrader().judge(rubric, answer), grader="offline")
    assert g.score > 0, [(j.key_point, j.status) for j in g.judgments]

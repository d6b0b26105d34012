"""Key points stated in other words (issue 23): the rubrics' cues carry each concept's usual names and
its practitioner phrasings, and a misconception's cues assert the wrong claim rather than name the
topic. All answers were written for these tests, from the key points' ideas, not from a dev set."""

from __future__ import annotations

import pytest

from mlgrade.grading import finalize
from mlgrade.graders.offline import OfflineGrader


def _grade(bank, qid: str, answer: str):
    rubric = bank.get(qid)
    return finalize(rubric, answer, OfflineGrader().judge(rubric, answer), grader="offline")


def _status(grade, point: str) -> str:
    return next(j.status for j in grade.judgments if j.key_point == point)


# (question, key point, an answer stating it in a practitioner's words)
PARAPHRASES = [
    ("q03", "lazy-instance-based",
     "With k-NN there is nothing to fit: the method keeps all the data around and does all the work when predicting."),
    ("q07", "forward-chaining",
     "Train on the first months, then test on the next block, so the test block always comes after the training data."),
    ("q08", "pixels-times-channels",
     "Each pixel of a colour photo holds separate red, green and blue values, so the inputs multiply quickly."),
    ("q16", "function-approximation",
     "Deep Q-learning replaces the table with a neural net that estimates the Q-values of every action from the state."),
    ("q19", "sweep-on-validation",
     "I pick the threshold on the validation data and leave the test set for the final estimate."),
    ("q13", "trade-offs",
     "Each of these tricks can quietly hurt accuracy, so I rerun the quality evaluation after every change."),
    ("q16", "td-target-loss",
     "The network regresses its Q-value toward a bootstrapped estimate built from the reward and the next state."),
    ("q25", "stacking-voting",
     "A simple ensemble can just average the predictions of a few different kinds of model."),
]


@pytest.mark.parametrize(("qid", "point", "answer"), PARAPHRASES)
def test_point_in_other_words_is_covered(bank, qid, point, answer):
    g = _grade(bank, qid, answer)
    assert _status(g, point) == "covered", g.judgments


@pytest.mark.parametrize(("qid", "answer"), [
    ("q08", "colour color red green blue megapixel grayscale greyscale pixel channel"),
    ("q08", "My favourite colour is the red, green and blue paint on the kitchen wall, and each pixel of the "
            "old television glowed."),
    ("q03", "nothing to fit, keeps all the data, no training phase, no model to fit, stores all the training"),
])
def test_new_vocabulary_does_not_lift_stuffing_or_off_topic_text(bank, qid, answer):
    assert _grade(bank, qid, answer).score <= 30


def test_setting_the_character_reading_aside_is_not_the_character_bigram_misconception(bank):
    answer = ("Split the text into words and return list(zip(words, words[1:])), every adjacent word pair in "
              "order. If the interviewer actually means character bigrams, that is a different function.")
    g = _grade(bank, "q21", answer)
    assert "character-bigrams" not in {m.id for m in g.misconceptions}, g.misconceptions


def test_asserting_character_pairs_is_still_the_misconception(bank):
    g = _grade(bank, "q21", "The bigrams of a string are its pairs of adjacent characters, like 'he', 'el', 'll'.")
    assert "character-bigrams" in {m.id for m in g.misconceptions}, g.misconceptions

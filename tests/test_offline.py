"""The offline grader: bands for strong / weak / keyword-stuffed / empty / off-topic answers on
built-in questions, evidence that verifies, misconceptions, feedback from the rubric's text."""

from __future__ import annotations

import asyncio

import pytest

from mlgrade.grading import agrade_rubric, finalize
from mlgrade.graders.offline import OFFLINE_VERSION, OfflineGrader

STRONG = {
    "q03": (
        "k-nearest neighbours predicts a new point from the k closest training examples under a distance metric: "
        "for classification it takes a majority vote of their labels and for regression it averages their values. "
        "It is a lazy, instance-based method, so training just stores the data and all the work happens at "
        "prediction time. The choice of k controls the bias-variance trade-off: a small k overfits to noise while a "
        "large k smooths the boundary too much, so k is tuned with cross-validation. Because it relies on distances, "
        "features have to be scaled and the metric (Euclidean, Manhattan, cosine) has to be chosen with care. It "
        "suffers from the curse of dimensionality when there are many irrelevant features. Prediction is expensive "
        "since it computes the distance to every stored point, which kd-trees or approximate search can speed up."
    ),
    "q05": (
        "It depends on the algorithm. Distance-based methods such as k-NN, k-means and SVMs are sensitive to scale, "
        "because a feature with a large range dominates the Euclidean distance. Models trained with gradient descent "
        "converge faster when the features are standardised, and ridge or lasso regularisation penalises every "
        "coefficient equally, so unscaled features are penalised unevenly. Tree-based models like random forests "
        "split on thresholds and are not affected by monotonic rescaling, so they don't need it. Common choices are "
        "standardisation to zero mean and unit variance, min-max scaling, or a robust scaler using the median and "
        "IQR when there are outliers. The scaler must be fit on the training data only, inside the pipeline, and the "
        "same transform applied to the test set to avoid leakage."
    ),
    "q07": (
        "I would use forward-chaining, also called rolling-origin or walk-forward validation, for example sklearn's "
        "TimeSeriesSplit, where every test fold comes after the data the model was trained on. Random k-fold shuffles "
        "the rows, so the model sees the future and leaks information through autocorrelation, which gives an "
        "optimistic estimate. You can use an expanding window, or a sliding window when the series is non-stationary. "
        "When lagged features overlap in time, leave a gap or embargo between the training and test blocks. The test "
        "block should match the forecast horizon, and all preprocessing should be fit within each fold. Finally, keep "
        "the most recent period as a hold-out set."
    ),
    "q12": (
        "Both stemming and lemmatization normalise inflected word forms to a common base form, which shrinks the "
        "vocabulary. Stemming uses heuristic rules to chop off suffixes, like the Porter stemmer, so the result is "
        "often not a real word. Lemmatization uses a dictionary and morphological analysis with the part of speech "
        "to return the lemma, which is always a valid word; for example it maps mice to mouse and better to good, "
        "which a stemmer cannot do. Stemmers also over-stem, for instance universe and university end up the same. "
        "Stemming is faster and simpler, while lemmatization is more accurate but slower. They help search recall "
        "and TF-IDF models but are rarely needed for transformers with subword tokenizers."
    ),
    "q17": (
        "The ROC curve plots the true positive rate against the false positive rate as the decision threshold "
        "varies. The AUC is the probability that a randomly chosen positive is ranked higher than a randomly chosen "
        "negative, so it measures how well the model ranks. An AUC of 0.5 is no better than random guessing, 1 is "
        "perfect, and below 0.5 means the ranking is inverted. It is threshold-independent and ignores calibration, "
        "so it says nothing about the operating point you deploy. With heavy class imbalance it can look optimistic, "
        "and a precision-recall curve or average precision is more informative. I use it to compare models and then "
        "choose the threshold separately based on costs."
    ),
}

WEAK = {  # two key points made in plain sentences, the rest missing: 30-59 is "weak"
    "q03": ("KNN looks at the nearest points to a new example and takes a majority vote of their classes. "
            "A small k overfits the noise while a large k underfits."),
    "q05": ("It depends on the model: the feature with a large range will dominate the distance in k-NN. "
            "Decision trees are not affected by scaling."),
    "q07": ("I would use a rolling forward-chaining split where the test data comes after the training data. "
            "Shuffling would leak information from the future into training."),
    "q12": ("Stemming chops the suffix off a word with simple rules, so the output is not always a real word. "
            "Lemmatization looks the word up in a dictionary to find its lemma."),
    "q17": ("AUC is the probability that a random positive is ranked higher than a random negative. "
            "A value of 0.5 is no better than random guessing and 1 is perfect."),
}

OFF_TOPIC = ("My favourite recipe is a tomato soup: roast the tomatoes with garlic, blend them with stock and "
             "season it with basil before serving it with fresh bread.")


def _grade(bank, qid: str, answer: str, grader: OfflineGrader | None = None):
    rubric = bank.get(qid)
    grader = grader or OfflineGrader()
    return finalize(rubric, answer, grader.judge(rubric, answer), grader="offline")


def _cue_list(rubric) -> str:
    return ", ".join(c for kp in rubric.key_points for c in kp.cues)


@pytest.mark.parametrize("qid", sorted(STRONG))
def test_strong_answer_is_strong(bank, qid):
    g = _grade(bank, qid, STRONG[qid])
    assert g.band == "strong", (g.score, [(j.key_point, j.status) for j in g.judgments])


@pytest.mark.parametrize("qid", sorted(WEAK))
def test_partial_answer_is_weak(bank, qid):
    g = _grade(bank, qid, WEAK[qid])
    assert g.band == "weak", (g.score, [(j.key_point, j.status) for j in g.judgments])


@pytest.mark.parametrize("qid", sorted(STRONG))
def test_bare_list_of_every_cue_is_poor(bank, qid):
    rubric = bank.get(qid)
    g = _grade(bank, qid, _cue_list(rubric))
    assert g.band == "poor", g.score


@pytest.mark.parametrize("qid", sorted(STRONG))
def test_one_cue_per_line_is_poor(bank, qid):
    rubric = bank.get(qid)
    answer = "\n".join(f"- {kp.cues[0]}" for kp in rubric.key_points for _ in range(3))
    assert _grade(bank, qid, answer).band == "poor"


@pytest.mark.parametrize("qid", sorted(STRONG))
def test_cues_glued_into_a_fake_sentence_is_poor(bank, qid):
    rubric = bank.get(qid)
    answer = "It is " + " and ".join(kp.cues[0] for kp in rubric.key_points) + " and it is " + \
        " and ".join(kp.cues[1] for kp in rubric.key_points if len(kp.cues) > 1) + "."
    assert _grade(bank, qid, answer).band == "poor"


@pytest.mark.parametrize("qid", sorted(STRONG))
def test_key_terms_repeated_are_poor(bank, qid):
    rubric = bank.get(qid)
    terms = " ".join(kp.cues[0] for kp in rubric.key_points[:2])
    assert _grade(bank, qid, " ".join([terms] * 15)).band == "poor"


@pytest.mark.parametrize("qid", sorted(STRONG))
def test_off_topic_answer_is_poor(bank, qid):
    g = _grade(bank, qid, OFF_TOPIC)
    assert g.band == "poor" and g.score < 10


@pytest.mark.parametrize("qid", sorted(STRONG))
def test_empty_answer_is_skipped_not_scored(bank, settings, qid):
    g = asyncio.run(agrade_rubric(bank.get(qid), "   \n", settings=settings, grader=OfflineGrader()))
    assert g.outcome == "skipped" and g.score is None


def test_model_answers_grade_strong_without_false_misconceptions(bank):
    grader = OfflineGrader()
    for rubric in bank:
        g = _grade(bank, rubric.id, rubric.model_answer, grader)
        assert g.band == "strong", (rubric.id, g.score)
        assert g.misconceptions == [], (rubric.id, [m.id for m in g.misconceptions])


def test_evidence_is_quoted_verbatim_and_verifies(bank):
    g = _grade(bank, "q07", STRONG["q07"])
    judged = [j for j in g.judgments if j.status != "missing"]
    assert judged
    for j in judged:
        assert j.evidence and j.evidence in STRONG["q07"]
        assert j.verified and j.claimed_status == j.status


def test_misconception_from_cues_is_penalised_but_not_when_refuted(bank):
    base = "It depends on the algorithm: distance-based models such as k-NN need scaling because a large range dominates."
    wrong = base + " Scaling also removes outliers from the data."
    refuted = base + " Scaling does not remove outliers from the data."
    g_wrong, g_ref = _grade(bank, "q05", wrong), _grade(bank, "q05", refuted)
    assert [m.id for m in g_wrong.misconceptions] == ["scaling-fixes-outliers"]
    assert g_wrong.misconceptions[0].verified and g_wrong.misconceptions[0].penalty == 10
    assert g_ref.misconceptions == []
    assert g_wrong.score < g_ref.score


def test_feedback_comes_from_the_rubric(bank):
    rubric = bank.get("q17")
    g = _grade(bank, "q17", "The ROC curve plots the true positive rate against the false positive rate.")
    points = {kp.point.strip() for kp in rubric.key_points}
    assert g.improvements and all(any(p in imp for p in points) for imp in g.improvements)
    assert any("(essential)" in imp for imp in g.improvements)
    assert g.follow_up in [f.question for f in rubric.follow_ups]
    strong = _grade(bank, "q17", STRONG["q17"])
    assert strong.strengths and all(s.removeprefix("Covered: ") in points for s in strong.strengths)


def test_typos_and_british_spelling_still_match(bank):
    a = _grade(bank, "q05", "Tree models are not afected by scaling, since they split on thresholds of one feature.")
    b = _grade(bank, "q05", "Tree models are not affected by scaling, since they split on thresholds of one feature.")
    assert a.score == b.score > 0


def test_grader_protocol_and_provenance(bank, settings):
    grader = OfflineGrader()
    rubric = bank.get("q03")
    g = asyncio.run(agrade_rubric(rubric, STRONG["q03"], settings=settings, grader=grader))
    assert g.outcome == "graded" and g.grader == "offline" and g.model == OFFLINE_VERSION
    assert g.prompt_hash == grader.prompt_hash(rubric) and len(g.prompt_hash) == 16
    assert grader.prompt_hash(rubric) != grader.prompt_hash(bank.get("q05"))
    assert g.cost_usd == 0.0


def test_make_grader_offline_by_default_without_key(settings):
    from mlgrade.grading import make_grader

    assert settings.grader_kind == "offline"
    assert isinstance(make_grader(settings), OfflineGrader)


def test_grade_api_works_offline_end_to_end():
    from mlgrade import grade

    g = grade("q07", STRONG["q07"])
    assert g.outcome == "graded" and g.band == "strong"


IDIOM = ("```python\ndef can_shift(a, b):\n    return len(a) == len(b) and b in a + a\n```\n"
         "Every rotation of a is a substring of a + a, so this is O(n) with a linear substring search.")


def test_working_code_and_a_dense_sentence_grade_well(bank, settings):
    """Code that passes the rubric's tests, explained in one dense sentence, is not keyword stuffing."""
    import asyncio

    from mlgrade.grading import agrade_rubric

    g = asyncio.run(agrade_rubric(bank.get("q24"), IDIOM, settings=settings, grader=OfflineGrader()))
    status = {j.key_point: j.status for j in g.judgments}
    assert status["correct-output"] == "covered" and status["doubling-idiom"] == "covered"
    assert status["complexity"] == "covered"
    assert g.band in ("strong", "adequate"), g.score


def test_code_shaped_keywords_that_do_not_run_get_no_exemption(bank, settings):
    import asyncio

    from mlgrade.grading import agrade_rubric

    stuffed = "```python\nlen(a) == len(b) a + a O(n) substring rotation concatenate\n```"
    g = asyncio.run(agrade_rubric(bank.get("q24"), stuffed, settings=settings, grader=OfflineGrader()))
    assert g.band == "poor", g.score


# --------------------------------------------------------------------------- topicality

# Written for these tests: a rubric's cue words reused in sentences about something else.
SILLY = {
    "q05": ("My cat depends on the model of her knn toy and svm distance to the sofa. A random forest is invariant to "
            "my mood. A large range of cookies will dominate the table. Gradient descent on a ski slope will converge "
            "faster. Ridge and lasso penal codes are strict. Use standardisation or min-max for bread. Fit on train "
            "only inside a pipeline at the plumber."),
    "q07": ("Use forward chaining when I walk my dog in the park, training on past walks. Leave a gap or embargo "
            "between meals so the lunch does not leak into dinner. Never shuffle the socks in the drawer; k-fold "
            "cross-validation of the laundry uses future information. Expanding window of my garden grows over time."),
    "q03": ("My grandmother is a lazy learner who stores every biscuit in the cupboard. Her knitting votes among the k "
            "nearest neighbours at the bingo hall. The distance to the bakery is measured in Euclidean slippers. With "
            "the curse of dimensionality her cardigan gets itchy. Scale the teapot before brewing because large "
            "kettles dominate."),
    "q25": ("Bagging my groceries reduces variance at the supermarket checkout. Boosting the volume of my stereo fixes "
            "bias in the neighbours' garden. A random forest of umbrellas averages the raindrops. Stacking pancakes "
            "with a meta-learner syrup on top combines breakfast. Weak learners at the gym are trained sequentially "
            "by the coach."),
    "q17": ("The ROC curve of my sandwich plots the true positive rate of mustard against the false positive rate of "
            "ketchup. An AUC of one means the pickles are perfectly ranked in the jar. A threshold on the doorstep "
            "decides whether the postman rings. The diagonal of my chessboard is a random guess of the knight."),
}


@pytest.mark.parametrize("qid", sorted(SILLY))
def test_cue_words_in_sentences_about_something_else_earn_little(bank, qid):
    rubric = bank.get(qid)
    g = finalize(rubric, SILLY[qid], OfflineGrader().judge(rubric, SILLY[qid]), grader="offline")
    assert g.band in ("poor", "weak") and g.score <= 50.0
    assert "off_topic" in g.review.reasons and g.review.needed
    assert all(j.status != "covered" for j in g.judgments)
    assert any("off-topic words:" in j.comment for j in g.judgments)


def test_the_off_topic_rule_is_what_stops_them(bank, monkeypatch):
    from mlgrade.graders import topicality

    monkeypatch.setattr(topicality, "OFF_TOPIC_SHARE", 2.0)  # rule off: no clause is ever off-topic
    rubric = bank.get("q05")
    g = finalize(rubric, SILLY["q05"], OfflineGrader().judge(rubric, SILLY["q05"]), grader="offline")
    assert g.band == "strong" and "off_topic" not in g.review.reasons


@pytest.mark.parametrize("qid", sorted(STRONG))
def test_on_topic_answers_are_not_marked_off_topic(bank, qid):
    rubric = bank.get(qid)
    g = finalize(rubric, STRONG[qid], OfflineGrader().judge(rubric, STRONG[qid]), grader="offline")
    assert not any("off-topic words:" in j.comment for j in g.judgments)
    assert "off_topic" not in g.review.reasons and g.band == "strong"


def test_worked_examples_from_everyday_data_stay_on_topic(bank):
    """Answers illustrate with house prices, customers, patients: the common-example list keeps them in the field."""
    rubric = bank.get("q05")
    answer = ("Distance-based models like knn are sensitive to scale: house price in dollars has a large range and "
              "dominates the distance next to the customer's age in years. Fit the scaler on the training data only, "
              "inside the pipeline.")
    a = OfflineGrader().judge(rubric, answer)
    assert not any("off-topic words:" in j.comment for j in a.judgments)
    assert sum(j.status == "covered" for j in a.judgments) >= 2


def test_domain_vocabulary_is_built_once_per_rubric(bank, monkeypatch):
    from mlgrade.graders import topicality

    calls = []
    real = topicality.domain_stems
    monkeypatch.setattr(topicality, "domain_stems", lambda r: calls.append(r.id) or real(r))
    g, rubric = OfflineGrader(), bank.get("q07")
    for answer in ("Use forward chaining.", "Never shuffle time series.", "Leave a gap between folds."):
        g.judge(rubric, answer)
    assert calls == ["q07"]

"""Issue 23 for questions q13-q25: a key point stated in a practitioner's words is found, and a
misconception stated the way its believers put it is flagged, while an answer that names the wrong
idea only to reject it is not. Every sentence was written for these tests from the rubrics' ideas,
before and without reading any answer of the expert-graded sets."""

from __future__ import annotations

import pytest

from mlgrade.graders.offline import OfflineGrader

GRADER = OfflineGrader()


def _judge(bank, qid: str, text: str):
    return GRADER.judge(bank.get(qid), text)


def _status(bank, qid: str, point: str, text: str) -> str:
    return next(j.status for j in _judge(bank, qid, text).judgments if j.key_point == point)


def _flags(bank, qid: str, text: str) -> set[str]:
    return {m.id for m in _judge(bank, qid, text).misconceptions}


# (question, key point, the point in a practitioner's words: library, tool or technique names)
POINTS = [
    ("q13", "quantization", "Load the weights with bitsandbytes in nf4 and keep the activations in bfloat16."),
    ("q13", "runtime-kernels", "Serve it through DeepSpeed and use the memory-efficient attention kernels from xFormers."),
    ("q13", "generation-specific", "Switch to GQA or MQA so the decoder stores fewer heads of past state, and try Medusa heads."),
    ("q14", "interaction-loop", "The agent interacts with the environment by trial and error and records each trajectory."),
    ("q14", "learning-update", "After each batch the actor-critic takes a gradient ascent step on the advantage-weighted "
                               "log-probability."),
    ("q16", "stability-tricks", "A frozen copy of the weights, refreshed by a Polyak soft update, supplies the regression targets."),
    ("q18", "extraction-methods", "Factor analysis can also build the compressed representation, and Isomap unrolls curved structure."),
    ("q18", "selection-methods", "Score each column with chi-square or ANOVA, or let Boruta or SelectKBest keep the useful ones."),
    ("q19", "calibration-and-prevalence", "Look at a reliability diagram and the Brier score before reading the scores as probabilities."),
    ("q20", "homoscedasticity", "When the residual spread opens into a megaphone shape, run a Goldfeld-Quandt check."),
    ("q20", "diagnostics-remedies", "After fitting, report HC3 sandwich standard errors and refit the model with WLS when the spread changes."),
    ("q22", "common-functions", "Softplus, Mish and SELU are smoother relatives of the rectified linear unit."),
    ("q23", "serving-scale", "Precompute the restaurant vectors every night into an HNSW index kept in Redis."),
    ("q23", "risks-monitoring", "Ranking on past clicks builds a filter bubble where the rich get richer, so track it on a dashboard."),
    ("q25", "stacking-voting", "A meta-classifier learns how far to trust each base model, or a plurality rule picks the class."),
    ("q25", "gradient-vs-reweighting", "AdaBoost raises the sample weight of hard rows and newer libraries follow the "
                                       "functional gradient of the loss."),
]


@pytest.mark.parametrize(("qid", "point", "text"), POINTS)
def test_point_in_a_practitioners_words_is_covered(bank, qid, point, text):
    assert _status(bank, qid, point, text) == "covered", text
    assert _flags(bank, qid, text) == set(), text


# (question, misconception, a believer stating it, a correct answer naming it to reject it)
MISCONCEPTIONS = [
    ("q13", "batching-cuts-latency", "Batching helps latency for every caller because the GPU stays busy.",
     "It is a myth that bigger batches lower latency for each caller: they raise throughput and add queueing delay."),
    ("q13", "free-quantization", "Going to int8 gives a free speedup with no quality loss.",
     "Quantisation is no free speedup; rerun the evaluation because some quality can be lost."),
    ("q14", "greedy-immediate", "The agent only cares about the immediate reward it gets on each move.",
     "A good agent does not only care about the immediate reward; it plans for the discounted return."),
    ("q14", "needs-labelled-data", "The agent learns from labelled state-action pairs prepared in advance.",
     "Unlike supervised learning, which needs annotated examples, the agent learns from rewards it collects itself."),
    ("q15", "q-learning-on-policy", "Q-learning and SARSA are both on-policy methods.",
     "Some people think Q-learning and SARSA are both on-policy methods, but Q-learning is off-policy."),
    ("q15", "off-policy-is-offline", "Off-policy learns from a fixed dataset without touching the environment.",
     "It is a misconception that off-policy learns from a fixed dataset only; that is offline RL."),
    ("q16", "dqn-continuous-actions", "DQN outputs continuous actions for the robot joints.",
     "DQN does not output continuous actions; for robot joints use DDPG, TD3 or SAC."),
    ("q17", "auc-is-accuracy", "The AUC reflects accuracy, so 0.9 is a very accurate model.",
     "The AUC is not accuracy: it reflects ranking, the chance a positive outscores a negative."),
    ("q17", "half-is-worst", "The lower bound is 0.5, which is a coin flip.",
     "0.5 is a coin flip, yet scores can fall below it, meaning the ranking is inverted."),
    ("q18", "pca-uses-labels", "PCA looks at the target to pick the components.",
     "PCA never looks at the target: it picks directions of largest variance, unlike LDA."),
    ("q19", "always-half", "A cut-off of 0.5 is ideal because the probabilities are symmetric.",
     "Nothing makes 0.5 special; pick the cut-off from the costs on validation data."),
    ("q19", "tune-on-test", "Sweep thresholds on the test set and keep the best one.",
     "Never sweep thresholds on the test set; sweep them on validation data instead."),
    ("q20", "normal-variables", "Linear regression assumes the features are normally distributed.",
     "It is a common myth that linear regression assumes the features are normally distributed."),
    ("q20", "collinearity-bias", "We get biased estimates due to multicollinearity.",
     "Multicollinearity does not bias the estimates; it inflates their variance."),
    ("q20", "any-correlation-invalidates", "Another assumption is independence of the features from one another.",
     "The errors must be independent; the features may be correlated, only perfect collinearity breaks the fit."),
    ("q22", "purpose-is-bounding", "The activation keeps the output between zero and one so nothing blows up.",
     "Bounding outputs is not the point of an activation; its job is to add non-linearity."),
    ("q22", "sigmoid-default-hidden", "Hidden layers should use sigmoid because it is smooth.",
     "Hidden layers should not use sigmoid by default; ReLU or GELU train better."),
    ("q22", "relu-is-linear", "Since ReLU is linear, stacking it adds nothing.",
     "ReLU is piecewise linear, yet its kink at zero makes deep stacks non-linear."),
    ("q23", "clicks-only", "The objective is CTR, full stop.",
     "Optimising CTR alone would be a mistake; weigh visits and bookings too."),
    ("q23", "offline-is-enough", "Once validation looks good, deploy directly to every user.",
     "Never deploy directly to every user: run an A/B test on the business metric first."),
    ("q24", "permutation-is-rotation", "B is a permutation of A, so it is a shift.",
     "Being an anagram is not enough, since 'abc' and 'acb' share letters and are not rotations."),
    ("q24", "caesar-shift", "Shift each letter by k places and wrap around at z.",
     "Do not shift each letter along the alphabet; a shift here means a cyclic rotation of the string."),
    ("q22", "sigmoid-default-hidden", "Sigmoid avoids vanishing gradients, so it suits every hidden layer.",
     "Sigmoid does not avoid vanishing gradients; it saturates, which is why hidden layers use ReLU."),
    ("q20", "normal-variables", "For OLS, y has to be normally distributed.",
     "y does not have to be normally distributed; only the errors matter, and only for small-sample tests."),
    ("q18", "fit-on-all-data", "Run PCA on all the data first, then split into train and test.",
     "Do not run PCA on all the data first; fit it on the training split only."),
    ("q14", "no-exploration", "Exploration is not necessary once the Q-values look reasonable.",
     "Exploration is necessary, since the values of untried actions stay unknown."),
    ("q15", "q-learning-on-policy", "On-policy methods include Q-learning and SARSA.",
     "On-policy methods include SARSA, not Q-learning."),
    ("q17", "precision-recall-axes", "The ROC curve shows the balance between precision and recall.",
     "The precision-recall curve, not the ROC curve, shows the balance between precision and recall."),
    ("q25", "bagging-reduces-bias", "Bagging tackles bias by averaging many trees.",
     "Bagging does not tackle bias; averaging trees mainly lowers variance, and boosting attacks bias."),
    ("q25", "boosting-parallel", "Boosting learners are independent of one another, like in bagging.",
     "Boosting learners are not independent: each new one is fitted to what the ensemble so far gets wrong."),
]


@pytest.mark.parametrize(("qid", "mid", "wrong", "right"), MISCONCEPTIONS, ids=[m[1] for m in MISCONCEPTIONS])
def test_misconception_in_a_believers_words_is_flagged(bank, qid, mid, wrong, right):
    assert mid in _flags(bank, qid, wrong), wrong


@pytest.mark.parametrize(("qid", "mid", "wrong", "right"), MISCONCEPTIONS, ids=[m[1] for m in MISCONCEPTIONS])
def test_rejecting_the_misconception_is_not_flagged(bank, qid, mid, wrong, right):
    assert _flags(bank, qid, right) == set(), right


# Correct statements that share words with the new misconception cues: none may draw a flag.
CORRECT = [
    ("q13", "Only structured pruning of whole heads speeds inference up on ordinary GPUs."),
    ("q13", "With int8 there is usually a small accuracy drop, so check it on the evaluation set."),
    ("q15", "SARSA uses the action actually taken next, while Q-learning uses the max over next actions."),
    ("q17", "ROC AUC is the probability that a random positive is scored above a random negative."),
    ("q19", "0.5 is only the default; the right threshold follows the costs of errors."),
    ("q20", "Only the residuals matter for normality, and only for small-sample tests."),
    ("q21", "Split on whitespace and return list(zip(words, words[1:])): word pairs, not character pairs."),
    ("q22", "Sigmoid keeps its output between 0 and 1, which suits a binary output layer."),
    ("q25", "Random forests average many deep trees, which lowers variance while bias stays about the same."),
]


@pytest.mark.parametrize(("qid", "text"), CORRECT)
def test_correct_statements_near_the_new_cues_draw_no_flag(bank, qid, text):
    assert _flags(bank, qid, text) == set(), text

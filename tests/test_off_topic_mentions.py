"""Naming the question's subject once does not make an answer to another question on topic
(issue 23 item 6): "(This is what on-policy is about.)" after an account of model-based RL lifted
it from 15 to 48.8. The sentences naming the subject must carry some of the answer, or the rest,
judged alone, must engage the question. Every answer here was written for these tests.
"""

from __future__ import annotations

import pytest

from mlgrade.graders.offline import OfflineGrader
from mlgrade.graders.textmatch import clauses
from mlgrade.graders import topicality
from mlgrade.grading import finalize
from mlgrade.scoring import OFF_TOPIC, OFF_TOPIC_CAP

from test_off_topic import EXPLORATION, ON_TOPIC, PARAPHRASE, TERSE

GRADER = OfflineGrader()

# q15 asks about on- vs off-policy learning; this answers "model-based vs model-free RL".
PLANNING = (
    "A model-based agent has, or fits, a description of its world: how each state and action lead to the next "
    "state and what reward comes with them. It can then plan by simulating futures, as tree search or dynamic "
    "programming do, and it needs comparatively few real interactions. A model-free agent never builds that "
    "description; it learns values or a policy straight from the rewards it experiences, which is simpler and "
    "avoids compounding model errors, yet usually costs far more trial and error before it performs well.")
# q12 asks about stemming vs lemmatization; this answers "how does subword tokenization work".
SUBWORDS = (
    "Byte-pair encoding starts from single characters and repeatedly merges the most frequent adjacent pair in "
    "the training corpus into a new vocabulary entry, until the vocabulary reaches a chosen size. Frequent words "
    "end up as one unit while rare words split into several pieces, so the model never meets an unknown token. "
    "WordPiece picks merges by how much they raise the likelihood of the corpus, and unigram tokenizers start "
    "large and prune. Vocabulary size trades sequence length against embedding table size.")

MENTIONS = {
    "q15": ["{answer} (This is what on-policy is about.)", "On-policy: {answer}",
            "{answer} In short, that is on-policy learning.", "{answer} (Think SARSA and the behaviour policy.)"],
    "q12": ["{answer} (This is what lemmatization is about.)", "Stemming: {answer}"],
}


def _grade(bank, qid: str, answer: str):
    rubric = bank.get(qid)
    return finalize(rubric, answer, GRADER.judge(rubric, answer), grader="offline")


@pytest.mark.parametrize("qid, answer, mention", [
    (qid, answer, m) for qid, answers in (("q15", [PLANNING, EXPLORATION]), ("q12", [SUBWORDS]))
    for answer in answers for m in MENTIONS[qid]])
def test_a_passing_mention_of_the_subject_does_not_lift_an_off_topic_answer(bank, qid, answer, mention):
    bare = _grade(bank, qid, answer)
    assert OFF_TOPIC in [m.id for m in bare.misconceptions]  # the answer alone is caught
    g = _grade(bank, qid, mention.format(answer=answer))
    flag = next((m for m in g.misconceptions if m.id == OFF_TOPIC), None)
    assert flag is not None, g.score
    assert "only in passing" in flag.claim and flag.evidence == ""
    assert g.score <= OFF_TOPIC_CAP and "off_topic" in g.review.reasons


THESIS_THEN_EXAMPLE = (
    "The split is about which policy the learning is about: on-policy methods learn the value of the policy "
    "that is choosing the actions, off-policy methods learn about a different one. Picture a robot crossing a "
    "room with a cliff along one wall. If it explores at random now and then, learning the values of how it "
    "really behaves teaches it to keep a safe distance from the edge, because a random step there is costly. "
    "Learning the values of the best possible behaviour instead teaches the shortest path along the edge, "
    "which is right once exploration stops but risky while it goes on.")


@pytest.mark.parametrize("answer", [ON_TOPIC, PARAPHRASE, TERSE, THESIS_THEN_EXAMPLE],
                         ids=["names-it", "paraphrase", "terse", "thesis-then-example"])
def test_answers_that_engage_the_subject_are_not_flagged(bank, answer):
    g = _grade(bank, "q15", answer)
    assert OFF_TOPIC not in [m.id for m in g.misconceptions], [m.claim for m in g.misconceptions]
    assert g.score > OFF_TOPIC_CAP


def test_no_model_answer_of_the_bank_reads_as_a_passing_mention(bank):
    for rubric in bank:
        subject = topicality.subject_for(rubric)
        if subject is None or not rubric.model_answer:
            continue
        spans = [c.tokens for c in clauses(rubric.model_answer)]
        assert topicality.off_topic_reason(subject, [t for c in spans for t in c], spans) == "", rubric.id


def test_the_share_that_counts_as_passing_is_what_decides(bank, monkeypatch):
    """With no share counted as passing, a mention engages the question as it did before."""
    monkeypatch.setattr(topicality, "MENTION_MAX_SHARE", 0.0)
    g = _grade(bank, "q15", MENTIONS["q15"][0].format(answer=PLANNING))
    assert OFF_TOPIC not in [m.id for m in g.misconceptions]

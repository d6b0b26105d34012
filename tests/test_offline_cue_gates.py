"""The offline grader seeks a key point's cue hits only in units where one of its cues can match
(issue 22, fifth round): a word cue needs all its needed words in the unit, a literal (code-like)
cue must occur in the squashed answer. A pair of clauses is the exception: its squashed text joins
its clauses' and skips the punctuation between them, so a literal cue can occur in it and nowhere
in the answer. These answers were written for these tests."""

from __future__ import annotations

from mlgrade.graders.offline import OfflineGrader
from mlgrade.models import KeyPoint, Rubric


def _rubric(cues: list[str]) -> Rubric:
    return Rubric(
        id="t-gates", number=0, section="company", kind="concept", difficulty="easy",
        question="How is the value reported?", model_answer="Walk through it.",
        key_points=[KeyPoint(id="literal", point="names the bracketed form", weight=1, essential=True, cues=cues),
                    KeyPoint(id="words", point="explains the rounding step", weight=1,
                             cues=["rounds the value to an integer"])],
    )


def _judgment(rubric: Rubric, answer: str, point: str):
    return next(j for j in OfflineGrader().judge(rubric, answer).judgments if j.key_point == point)


def test_a_literal_cue_joining_two_clauses_of_a_pair_is_still_found():
    # the pair's squashed text is "...of(a)bisthen..." while the answer's is "...of(a).bisthen...":
    # the cue "a)b" is in the pair only
    rubric = _rubric(["a)b"])
    answer = "We report the value of f(a). B is then used in the next step of the method."
    j = _judgment(rubric, answer, "literal")
    assert j.status != "missing"
    assert "'a)b'" in j.comment
    assert j.evidence == answer[:-1]  # both clauses: the pair, not either clause alone


def test_a_literal_cue_absent_from_the_answer_is_found_nowhere():
    rubric = _rubric(["a)b"])
    j = _judgment(rubric, "We report the value of f(c) and then use it in the next step.", "literal")
    assert j.status == "missing"


def test_a_word_cue_missing_a_needed_word_leaves_the_point_to_its_words():
    rubric = _rubric(["a)b"])
    # "rounds" and "value" are here, "integer" is not: the cue cannot match and is not sought
    missing = _judgment(rubric, "The method rounds the value before it is reported to the user.", "words")
    assert "cues:" not in missing.comment
    found = _judgment(rubric, "The method rounds the value to an integer before it is reported.", "words")
    assert found.status == "covered" and "'rounds the value to an integer'" in found.comment

"""Feedback written from the rubric's own text, for graders that write none: strengths, what to
improve, and the follow-up question nearest the most important missed point."""

from __future__ import annotations

from functools import lru_cache

from ..models import Judgment, MisconceptionFound, Rubric
from ..scoring import KEYWORD_LIST, OFF_TOPIC
from .injection import MISCONCEPTION_ID as INJECTION_ID
from .textmatch import STOPWORDS, stem

def _lower_first(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def strengths_for(rubric: Rubric, judgments: list[Judgment]) -> list[str]:
    """Up to three covered key points, heaviest first (grading.finalize calls it again once the
    code's run has decided the correctness points)."""
    status = {j.key_point: j.status for j in judgments}
    covered = sorted((kp for kp in rubric.key_points if status[kp.id] == "covered"), key=lambda k: -k.weight)
    return [f"Covered: {kp.point.strip()}" for kp in covered[:3]]


def _correction(m: MisconceptionFound) -> str:
    if m.id == INJECTION_ID:
        return "Answer the question only: text addressed to the grader earns nothing and makes the answer poor."
    if m.id == OFF_TOPIC:  # its claim is the grader's reason, not a wrong statement to deny
        return "Answer the question that was asked: an accurate answer to another question earns little."
    if m.id == KEYWORD_LIST:
        return "Explain the ideas in sentences of your own: the question's key terms strung together earn little."
    return f"Correct this: it is not true that {_lower_first(m.claim)}."


def improvements_for(rubric: Rubric, judgments: list[Judgment], found: list[MisconceptionFound]) -> list[str]:
    """Misconceptions to correct, then missing and partial key points (essential first), up to four."""
    status = {j.key_point: j.status for j in judgments}
    out = [_correction(m) for m in found if m.claim]
    todo = sorted((kp for kp in rubric.key_points if status[kp.id] != "covered"),
                  key=lambda k: (status[k.id] != "missing", not k.essential, -k.weight))
    for kp in todo:
        verb = "Add" if status[kp.id] == "missing" else "Develop"
        tag = " (essential)" if kp.essential and status[kp.id] == "missing" else ""
        out.append(f"{verb}{tag}: {kp.point.strip()}")
    return out[:4]


_STOP_STEMS = frozenset(stem(w) for w in STOPWORDS)


def follow_up_for(rubric: Rubric, judgments: list[Judgment]) -> str:
    """The follow-up question closest to the most important point the answer missed."""
    questions = [f.question for f in rubric.follow_ups]
    if not questions:
        return ""
    status = {j.key_point: j.status for j in judgments}
    missed = sorted((kp for kp in rubric.key_points if status[kp.id] != "covered"), key=lambda k: -k.weight)
    if not missed:
        return questions[0]
    target = _point_stems(missed[0].point)
    return max(questions, key=lambda f: len(target & _question_stems(f)))


@lru_cache(maxsize=4_096)  # a rubric's few texts, asked for every answer; bounded for long batches
def _point_stems(point: str) -> frozenset[str]:
    return frozenset({stem(w) for w in point.split()} - _STOP_STEMS)


@lru_cache(maxsize=4_096)
def _question_stems(question: str) -> frozenset[str]:
    return frozenset(stem(w.strip("?,.")) for w in question.split())

"""What an interview came to: each question's main and follow-up grades and time, the verdict
and the three things most worth studying next. Pure data and arithmetic, no terminal, no store.

The verdict rule is stated once, in VERDICT_RULE, and `verdict` implements exactly that sentence.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models import Grade, Rubric

MAIN_SHARE = 0.7  # of a question's score; the follow-up answer is the rest
STRONG_HIRE = (80.0, 60.0)  # (least mean, least score of any question)
HIRE = (65.0, 30.0)
LEAN_NO_HIRE = 45.0
VERDICTS = ("strong hire", "hire", "lean no hire", "no hire")

VERDICT_RULE = (
    "A question scores 70% main answer + 30% follow-up (main alone if the follow-up is not graded, a skip 0); "
    "strong hire: mean ≥ 80, none under 60; hire: mean ≥ 65, none under 30; lean no hire: mean ≥ 45; else no hire."
)


@dataclass
class QuestionResult:
    """One question of the interview as it went. `status`: done, skipped, main (the follow-up was
    not reached: the interview ended) or pending (never asked)."""

    number: int
    question_id: str
    question: str
    section: str
    reason: str
    status: str
    main: Grade | None = None
    main_answer: str = ""
    follow_up_question: str = ""
    follow_up: Grade | None = None  # outcome "skipped" when the rubric has no key points for it
    follow_up_answer: str = ""
    follow_up_skipped: bool = False
    seconds: float = 0.0
    budget_seconds: float = 0.0
    main_attempt: int | None = None
    follow_up_attempt: int | None = None

    @property
    def over_seconds(self) -> float:
        return max(0.0, self.seconds - self.budget_seconds) if self.budget_seconds else 0.0

    @property
    def asked(self) -> bool:
        return self.status != "pending"

    @property
    def score(self) -> float | None:
        """The question's score for the verdict (see VERDICT_RULE); None when it does not count
        (never asked, or the main answer's grading failed: a failure is not a zero)."""
        if self.status == "skipped":
            return 0.0
        if self.status == "pending" or self.main is None or not self.main.ok or self.main.score is None:
            return None
        if self.follow_up_skipped:
            return round(MAIN_SHARE * self.main.score, 1)
        if self.follow_up is not None and self.follow_up.ok and self.follow_up.score is not None:
            return round(MAIN_SHARE * self.main.score + (1 - MAIN_SHARE) * self.follow_up.score, 1)
        return self.main.score


@dataclass
class Verdict:
    decision: str | None  # one of VERDICTS, None when nothing could be graded
    mean: float | None
    lowest: float | None
    counted: int  # questions whose score counts
    rule: str = VERDICT_RULE


def verdict(scores: list[float]) -> Verdict:
    """The decision for these question scores, by VERDICT_RULE."""
    if not scores:
        return Verdict(None, None, None, 0)
    # decided on the exact mean: the shown one is rounded, and 64.95 must not pass for 65
    mean, lowest = statistics.fmean(scores), min(scores)
    if mean >= STRONG_HIRE[0] and lowest >= STRONG_HIRE[1]:
        decision = "strong hire"
    elif mean >= HIRE[0] and lowest >= HIRE[1]:
        decision = "hire"
    elif mean >= LEAN_NO_HIRE:
        decision = "lean no hire"
    else:
        decision = "no hire"
    return Verdict(decision, round(mean, 1), lowest, len(scores))


@dataclass
class StudyItem:
    question_id: str
    text: str
    why: str  # "misconception stated", "essential point missed", …
    priority: float = field(default=0.0, repr=False)


def _missed(grade: Grade | None, points: dict[str, Any], qid: str, where: str) -> list[StudyItem]:
    if grade is None or not grade.ok:
        return []
    items = []
    for m in grade.misconceptions:
        if m.verified:
            items.append(StudyItem(qid, m.claim or m.id, ", ".join(x for x in ("misconception", where) if x),
                                   100 + m.penalty))
    for j in grade.judgments:
        kp = points.get(j.key_point)
        if kp is None or j.status == "covered":
            continue
        share = 1.0 if j.status == "missing" else 0.5
        essential = bool(getattr(kp, "essential", False))
        why = ", ".join(x for x in ("essential" if essential else "", where, "missed" if share == 1 else "partly made") if x)
        items.append(StudyItem(qid, kp.point, why, (50 if essential else 0) + share * kp.weight))
    return items


def study_next(questions: list[QuestionResult], rubrics: dict[str, Rubric], *, limit: int = 3) -> list[StudyItem]:
    """The things most worth studying next, from what was missed: misconceptions stated first, then
    skipped questions, then essential points missed, then the heaviest points missed or half made."""
    items: list[StudyItem] = []
    for q in questions:
        rubric = rubrics.get(q.question_id)
        if rubric is None:
            continue
        if q.status == "skipped":
            items.append(StudyItem(q.question_id, f"the whole question: {rubric.question}", "skipped", 90))
            continue
        items += _missed(q.main, {kp.id: kp for kp in rubric.key_points}, q.question_id, "")
        follow = next((f for f in rubric.follow_ups if getattr(f, "question", f) == q.follow_up_question), None)
        if follow is not None and getattr(follow, "key_points", None):
            items += _missed(q.follow_up, {kp.id: kp for kp in follow.key_points}, q.question_id, "follow-up")
    items.sort(key=lambda i: -i.priority)
    out: list[StudyItem] = []
    seen: set[str] = set()
    for item in items:
        if item.text not in seen:
            seen.add(item.text)
            out.append(item)
    return out[:limit]


@dataclass
class InterviewResult:
    interview_id: str
    status: str  # open, finished, ended
    created_at: str
    grader: str
    model: str
    minutes: float
    feedback: str
    questions: list[QuestionResult]
    verdict: Verdict
    study: list[StudyItem]
    report_path: str | None = None

    @property
    def asked(self) -> list[QuestionResult]:
        return [q for q in self.questions if q.asked]

    @property
    def seconds(self) -> float:
        return sum(q.seconds for q in self.questions)

    def to_dict(self) -> dict[str, Any]:
        """The `--json` shape."""
        def grade(g: Grade | None) -> dict[str, Any] | None:
            return None if g is None else {"outcome": g.outcome, "score": g.score, "band": g.band, "error": g.error}

        return {
            "interview_id": self.interview_id, "status": self.status, "created_at": self.created_at,
            "grader": self.grader, "model": self.model, "minutes": self.minutes,
            "verdict": self.verdict.decision, "mean": self.verdict.mean, "rule": self.verdict.rule,
            "report": self.report_path,
            "questions": [{
                "number": q.number, "question_id": q.question_id, "status": q.status, "score": q.score,
                "main": grade(q.main), "follow_up_question": q.follow_up_question, "follow_up": grade(q.follow_up),
                "seconds": round(q.seconds, 1), "budget_seconds": round(q.budget_seconds, 1),
                "main_attempt": q.main_attempt, "follow_up_attempt": q.follow_up_attempt,
            } for q in self.questions],
            "study_next": [{"question_id": s.question_id, "what": s.text, "why": s.why} for s in self.study],
        }

"""Practice sessions as a library: which question to ask next (by the review schedule in
schedule.py), grading and storing each attempt, and the session summary.

The terminal loop (tui.py) and the CLI are thin layers over this module, so a
session can be driven from Python or from tests with any Grader (e.g. mlgrade.graders.fake.FakeGrader).
"""

from __future__ import annotations

import random as _random
import statistics
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from .history import Attempt, MissedPoint, all_attempts, missed_key_points, session_attempts
from .schedule import Schedule, next_review, quality, schedule_for, utcnow  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    from ..config import Settings
    from ..grading import Grader
    from ..models import FollowUp, Grade, Rubric
    from ..rubrics import RubricBank
    from ..store import Store

# --------------------------------------------------------------------------- question choice


@dataclass
class Pick:
    rubric: Rubric
    reason: str  # shown to the user: why this question now


def _ago(then: datetime, now: datetime) -> str:
    days = (now - then).total_seconds() / 86400
    if days < 1 / 24:
        return "just now"
    if days < 1:
        return f"{int(days * 24)} h ago"
    return f"{int(days)} day{'s' if int(days) != 1 else ''} ago"


def rank_questions(bank: RubricBank, attempts: list[Attempt], *, now: datetime | None = None,
                   section: str | None = None, due_only: bool = False, exclude: Iterable[str] = ()) -> list[Pick]:
    """The questions in the order most worth practising:
    1. due for review, weakest last score first (then the most overdue);
    2. never graded, in bank order;
    3. the rest, weakest last score first (then the soonest due).
    `due_only` keeps group 1 only."""
    now = now or utcnow()
    schedule = schedule_for(attempts, now=now)
    skip = set(exclude)
    due, unseen, rest = [], [], []
    for r in bank.by_section(section):
        if r.id in skip:
            continue
        s = schedule.get(r.id)
        if s is None:
            unseen.append(Pick(r, "never practised"))
        elif s.is_due(now):
            due.append((s.last_score, s.due_at, Pick(r, f"due for review · last score {s.last_score:g}, "
                                                           f"{_ago(s.last_at, now)}")))
        else:
            rest.append((s.last_score, s.due_at, Pick(r, f"weakest recent score · last {s.last_score:g}, "
                                                            f"{_ago(s.last_at, now)}")))
    due.sort(key=lambda t: (t[0], t[1]))
    rest.sort(key=lambda t: (t[0], t[1]))
    if due_only:
        return [p for *_, p in due]
    return [p for *_, p in due] + unseen + [p for *_, p in rest]


def next_due(bank: RubricBank, attempts: list[Attempt], *, section: str | None = None) -> Schedule | None:
    """The question that falls due soonest (for "nothing is due; next is … in 2 days")."""
    ids = {r.id for r in bank.by_section(section)}
    upcoming = [s for s in schedule_for(attempts).values() if s.question_id in ids]
    return min(upcoming, key=lambda s: s.due_at) if upcoming else None


# --------------------------------------------------------------------------- session


@dataclass
class SessionOptions:
    questions: list[str] = field(default_factory=list)  # asked first, in this order
    section: str | None = None
    count: int | None = None  # stop after this many distinct questions
    due_only: bool = False
    random: bool = False


@dataclass
class QuestionResult:
    question_id: str
    scores: list[float] = field(default_factory=list)  # graded attempts in order
    errors: int = 0

    @property
    def last(self) -> float | None:
        return self.scores[-1] if self.scores else None


@dataclass
class SessionSummary:
    session_id: str
    questions: list[QuestionResult]
    attempts: int  # graded attempts
    errors: int
    mean_score: float | None  # mean over each question's latest score
    weakest: list[MissedPoint]  # key points missed in each question's latest graded attempt

    def to_dict(self) -> dict[str, object]:
        from dataclasses import asdict

        return asdict(self)


class PracticeSession:
    """One sitting: picks questions, grades answers, stores every graded or failed attempt
    (each in its own transaction, so a crash loses at most the attempt being graded)."""

    def __init__(self, store: Store, bank: RubricBank, *, grader: Grader, settings: Settings,
                 options: SessionOptions | None = None, rng: _random.Random | None = None,
                 clock: Callable[[], datetime] = utcnow):
        self.store, self.bank, self.grader, self.settings = store, bank, grader, settings
        self.options = options or SessionOptions()
        self.rng = rng or _random.Random()
        self.clock = clock
        self.session_id = uuid.uuid4().hex[:12]
        self.asked: list[str] = []
        self._queue = [bank.get(q).id for q in self.options.questions]  # validates ids up front

    @property
    def finished(self) -> bool:
        return self.options.count is not None and len(self.asked) >= self.options.count

    def candidates(self) -> list[Pick]:
        return rank_questions(self.bank, all_attempts(self.store), now=self.clock(), section=self.options.section,
                              due_only=self.options.due_only, exclude=self.asked)

    def next_question(self) -> Pick | None:
        """The next question of the session, or None when it is over (count reached, nothing left)."""
        if self.finished:
            return None
        while self._queue:
            qid = self._queue.pop(0)
            if qid not in self.asked:
                return self._ask(Pick(self.bank.rubrics[qid], "you asked for it"))
        picks = self.candidates()
        if not picks:
            return None
        pick = self.rng.choice(picks) if self.options.random else picks[0]
        if self.options.random:
            pick = Pick(pick.rubric, "picked at random")
        return self._ask(pick)

    def _ask(self, pick: Pick) -> Pick:
        self.asked.append(pick.rubric.id)
        return pick

    async def agrade(self, rubric: Rubric, answer: str, *, started_at: str | None = None) -> tuple[Grade, int | None]:
        """Grade and store one answer. Returns the grade and its attempt id (None when skipped:
        an empty answer is not an attempt). Oversized answers raise UsageError, nothing stored."""
        from ..grading import agrade_rubric

        grade = await agrade_rubric(rubric, answer, settings=self.settings, grader=self.grader)
        if grade.outcome == "skipped":
            return grade, None
        attempt_id = self.store.add_attempt(grade.model_dump(mode="json"), answer, session_id=self.session_id,
                                            started_at=started_at)
        return grade, attempt_id

    def grade(self, rubric: Rubric, answer: str, *, started_at: str | None = None) -> tuple[Grade, int | None]:
        import asyncio

        return asyncio.run(self.agrade(rubric, answer, started_at=started_at))

    def grade_follow_up(self, rubric: Rubric, follow_up: FollowUp, main_answer: str, reply: str, *,
                        parent_id: int | None, started_at: str | None = None) -> tuple[Grade, int | None]:
        """Grade `reply` as an answer to the follow-up question (its own key points, the first
        answer as context) and store it linked to the main attempt; None as id when nothing was
        stored (an empty reply). A follow-up without key points is stored as "not graded"."""
        from ..followup import grade_follow_up

        grade = grade_follow_up(rubric, follow_up, main_answer, reply, settings=self.settings, grader=self.grader)
        if grade.outcome == "skipped" and not reply.strip():
            return grade, None
        attempt_id = self.store.add_attempt(grade.model_dump(mode="json"), reply, session_id=self.session_id,
                                            started_at=started_at, kind="follow_up", parent_id=parent_id)
        return grade, attempt_id

    def summary(self) -> SessionSummary:
        attempts = [a for a in session_attempts(self.store, self.session_id) if a.kind == "main"]
        results: dict[str, QuestionResult] = {}
        latest: dict[str, Attempt] = {}
        for a in attempts:
            res = results.setdefault(a.question_id, QuestionResult(a.question_id))
            if a.outcome == "graded" and a.score is not None:
                res.scores.append(a.score)
                latest[a.question_id] = a
            elif a.outcome == "grader_error":
                res.errors += 1
        lasts = [r.last for r in results.values() if r.last is not None]
        return SessionSummary(
            session_id=self.session_id, questions=list(results.values()),
            attempts=sum(len(r.scores) for r in results.values()), errors=sum(r.errors for r in results.values()),
            mean_score=round(statistics.fmean(lasts), 1) if lasts else None,
            weakest=missed_key_points(list(latest.values()), self.bank, limit=5),
        )


def practice_follow_up(rubric: Rubric, grade: Grade) -> FollowUp | None:
    """The follow-up practice offers after `grade`: the rubric's, aimed at the weakest part of the
    answer (`choose_follow_up`); for a rubric without follow-ups, the grader's own question, which
    is asked but cannot be graded (it has no key points)."""
    from ..followup import choose_follow_up
    from ..models import FollowUp

    if not grade.ok:
        return None
    chosen = choose_follow_up(rubric, grade)
    if chosen is None and grade.follow_up.strip():
        chosen = FollowUp(question=grade.follow_up.strip())
    return chosen

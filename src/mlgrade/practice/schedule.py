"""The spaced-repetition review schedule (SM-2 style), replayed from practice history.

Its own module so that history queries (`stats`) and the practice session both use it
without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .history import Attempt

# SM-2 rates recall 0–5; a score out of 100 maps onto it linearly, and "adequate" (60) is a pass.
PASS_QUALITY = 3.0
START_EASE = 2.5
MIN_EASE = 1.3
# A failed answer comes back within the session, not a day later like a first pass (issue 26: a 95
# and a 0 on the first try had the same next review time). SM-2 itself repeats a failed item the same day.
FAIL_INTERVAL_DAYS = 10 / (24 * 60)


def quality(score: float) -> float:
    return max(0.0, min(5.0, score / 20.0))


@dataclass
class Schedule:
    question_id: str
    repetitions: int  # consecutive passing reviews
    interval_days: float
    ease: float
    last_score: float
    last_at: datetime
    due_at: datetime

    def is_due(self, now: datetime | None = None) -> bool:
        return (now or utcnow()) >= self.due_at


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def next_review(prev: Schedule | None, question_id: str, score: float, at: datetime) -> Schedule:
    """One SM-2 step: a pass lengthens the interval (1 day, 6 days, then × ease); a fail
    starts over, due again in FAIL_INTERVAL_DAYS (ten minutes). Ease falls with low-quality passes and never below 1.3."""
    q = quality(score)
    reps, interval, ease = (prev.repetitions, prev.interval_days, prev.ease) if prev else (0, 0.0, START_EASE)
    if q >= PASS_QUALITY:
        reps += 1
        interval = 1.0 if reps == 1 else 6.0 if reps == 2 else round(interval * ease, 1)
    else:
        reps, interval = 0, FAIL_INTERVAL_DAYS
    ease = max(MIN_EASE, ease + 0.1 - (5 - q) * (0.08 + (5 - q) * 0.02))
    return Schedule(question_id, reps, interval, round(ease, 3), score, at, at + timedelta(days=interval))


def schedule_for(attempts: Iterable[Attempt], *, now: datetime | None = None) -> dict[str, Schedule]:
    """The review schedule of every question with a graded attempt, replayed from history
    (oldest first). Nothing is stored: history is the single source of truth."""
    out: dict[str, Schedule] = {}
    for a in sorted(attempts, key=lambda a: a.id):
        if a.outcome == "graded" and a.score is not None:
            out[a.question_id] = next_review(out.get(a.question_id), a.question_id, a.score, a.created)
    return out

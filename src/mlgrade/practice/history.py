"""Queries over the practice history (the `attempts` table): recent attempts, one attempt,
per-question and per-section statistics, the key points missed most often, and retrying
attempts that ended in a grader error.

Every function takes an open `Store`; nothing here writes except `record_grade` (a `mlgrade grade`
attempt) and `retry_errors`, which add new attempts through `Store.add_attempt` (one transaction
each), never edit old ones.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Settings
    from ..grading import Grader
    from ..models import Grade
    from ..rubrics import RubricBank
    from ..store import Store

# How many of the latest graded scores the trend compares against the ones before them.
TREND_WINDOW = 3


@dataclass
class Attempt:
    id: int
    session_id: str | None
    question_id: str
    answer: str
    outcome: str
    score: float | None
    band: str | None
    grader: str | None
    model: str | None
    error: str | None
    started_at: str | None
    created_at: str
    grade_json: str = field(repr=False, default="{}")
    kind: str = "main"  # "follow_up": graded against a follow-up's own key points, linked by parent_id
    parent_id: int | None = None

    @property
    def grade(self) -> dict[str, Any]:
        return json.loads(self.grade_json)

    def to_grade(self) -> Grade:
        from ..models import Grade

        return Grade.model_validate(self.grade)

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)

    def to_dict(self, *, full: bool = False) -> dict[str, Any]:
        data = asdict(self)
        data.pop("grade_json")
        if full:
            data["grade"] = self.grade
        return data


_COLUMNS = ("id, session_id, question_id, answer, outcome, score, band, grader, model, error, started_at, created_at,"
            " grade_json, kind, parent_id")


def record_grade(settings: Settings, grade: Grade, answer: str) -> int | None:
    """Store a `mlgrade grade` result as an attempt, so `history` and `stats` (and the review
    schedule) see it like a practice answer. A skipped (empty) answer is not an attempt. Returns
    the attempt id; raises MlgradeError when the history cannot be opened."""
    import sqlite3

    from ..errors import ConfigError
    from ..store import Store

    if grade.outcome == "skipped":
        return None
    try:
        with Store.for_settings(settings) as store:
            return store.add_attempt(grade.model_dump(mode="json"), answer)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"cannot write the history under {settings.db_path} ({exc})") from None


def _attempt(row: Any) -> Attempt:
    return Attempt(**{k: row[k] for k in row.keys()})


# ------------------------------------------------------------------ plain queries


def recent(store: Store, *, limit: int | None = 20, question_id: str | None = None) -> list[Attempt]:
    """Newest first. `limit=None` returns everything."""
    sql = f"SELECT {_COLUMNS} FROM attempts"
    args: list[Any] = []
    if question_id:
        sql += " WHERE question_id = ?"
        args.append(question_id)
    sql += " ORDER BY id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return [_attempt(r) for r in store.db.execute(sql, args)]


def all_attempts(store: Store) -> list[Attempt]:
    """Every answer to a main question, oldest first: the order the schedule and the trends are
    computed in. Follow-up answers are left out: their key points are the follow-up's, not the question's."""
    return [_attempt(r) for r in store.db.execute(f"SELECT {_COLUMNS} FROM attempts WHERE kind = 'main' ORDER BY id")]


def follow_ups_of(store: Store, parent_id: int) -> list[Attempt]:
    rows = store.db.execute(f"SELECT {_COLUMNS} FROM attempts WHERE parent_id = ? ORDER BY id", (parent_id,))
    return [_attempt(r) for r in rows]


def get(store: Store, attempt_id: int) -> Attempt | None:
    row = store.db.execute(f"SELECT {_COLUMNS} FROM attempts WHERE id = ?", (attempt_id,)).fetchone()
    return _attempt(row) if row else None


def session_attempts(store: Store, session_id: str) -> list[Attempt]:
    rows = store.db.execute(f"SELECT {_COLUMNS} FROM attempts WHERE session_id = ? ORDER BY id", (session_id,))
    return [_attempt(r) for r in rows]


# ------------------------------------------------------------------ statistics


@dataclass
class QuestionStats:
    question_id: str
    section: str
    attempts: int  # graded attempts
    errors: int  # grader errors (not scores, never averaged)
    best: float | None
    last: float | None
    mean: float | None
    trend: float | None  # mean of the latest TREND_WINDOW scores minus the mean of the ones before
    last_at: str | None


@dataclass
class SectionStats:
    section: str
    questions: int  # questions in the bank for this section
    practised: int  # of which at least one graded attempt
    attempts: int
    best: float | None
    mean: float | None  # mean over graded attempts
    mean_last: float | None  # mean of each practised question's latest score


@dataclass
class MissedPoint:
    question_id: str
    key_point: str
    point: str
    missed: float  # judged missing (partial counts as half)
    judged: int  # graded attempts that judged this point
    weight: float = 1.0
    essential: bool = False

    @property
    def rate(self) -> float:
        return self.missed / self.judged if self.judged else 0.0


def trend(scores: list[float]) -> float | None:
    """How the latest scores compare with the earlier ones; None until there are two scores."""
    if len(scores) < 2:
        return None
    window = min(TREND_WINDOW, len(scores) - 1)
    return round(statistics.fmean(scores[-window:]) - statistics.fmean(scores[:-window]), 1)


def graded_scores_by_question(attempts: list[Attempt]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for a in attempts:
        if a.outcome == "graded" and a.score is not None:
            out[a.question_id].append(a.score)
    return out


def question_stats(store: Store, bank: RubricBank | None = None) -> list[QuestionStats]:
    """One row per question with any attempt, in bank order (unknown ids last)."""
    attempts = all_attempts(store)
    scores = graded_scores_by_question(attempts)
    errors = Counter(a.question_id for a in attempts if a.outcome == "grader_error")
    last_at: dict[str, str] = {}
    for a in attempts:
        if a.outcome == "graded":
            last_at[a.question_id] = a.created_at
    order = {qid: i for i, qid in enumerate(bank.ids())} if bank else {}
    qids = sorted(set(scores) | set(errors), key=lambda q: (order.get(q, len(order)), q))
    rows = []
    for qid in qids:
        s = scores.get(qid, [])
        section = bank.rubrics[qid].section if bank and qid in bank.rubrics else "?"
        rows.append(QuestionStats(
            question_id=qid, section=section, attempts=len(s), errors=errors.get(qid, 0),
            best=max(s) if s else None, last=s[-1] if s else None,
            mean=round(statistics.fmean(s), 1) if s else None, trend=trend(s), last_at=last_at.get(qid),
        ))
    return rows


def section_stats(store: Store, bank: RubricBank) -> list[SectionStats]:
    from ..models import SECTIONS

    per_question = {q.question_id: q for q in question_stats(store, bank)}
    scores = graded_scores_by_question(all_attempts(store))
    rows = []
    for section in SECTIONS:
        ids = [r.id for r in bank.by_section(section)]
        if not ids:
            continue
        all_scores = [s for qid in ids for s in scores.get(qid, [])]
        lasts = [per_question[qid].last for qid in ids if qid in per_question and per_question[qid].last is not None]
        rows.append(SectionStats(
            section=section, questions=len(ids), practised=len(lasts), attempts=len(all_scores),
            best=max(all_scores) if all_scores else None,
            mean=round(statistics.fmean(all_scores), 1) if all_scores else None,
            mean_last=round(statistics.fmean(lasts), 1) if lasts else None,
        ))
    return rows


def missed_key_points(attempts: list[Attempt], bank: RubricBank | None = None, *, limit: int = 10) -> list[MissedPoint]:
    """Key points judged missing (or half for partial) most often across graded attempts.
    Sorted by how often they were missed, then by miss rate, then by what they cost."""
    missed: Counter[tuple[str, str]] = Counter()
    judged: Counter[tuple[str, str]] = Counter()
    for a in attempts:
        if a.outcome != "graded":
            continue
        for j in a.grade.get("judgments", []):
            key = (a.question_id, j["key_point"])
            judged[key] += 1
            missed[key] += {"missing": 1.0, "partial": 0.5}.get(j["status"], 0.0)
    rows = []
    for (qid, kp_id), count in missed.items():
        if count <= 0:
            continue
        kp = bank.rubrics[qid].key_point(kp_id) if bank and qid in bank.rubrics else None
        rows.append(MissedPoint(qid, kp_id, kp.point if kp else kp_id, count, judged[(qid, kp_id)],
                                weight=kp.weight if kp else 1.0, essential=bool(kp and kp.essential)))
    # ties (common: one attempt each) go to the points that cost most: essential, then heavy
    rows.sort(key=lambda m: (-m.missed, -m.rate, not m.essential, -m.weight, m.question_id, m.key_point))
    return rows[:limit]


def stats(store: Store, bank: RubricBank, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything `mlgrade stats` shows, as plain data (the `--json` shape)."""
    from .schedule import schedule_for

    attempts = all_attempts(store)
    schedule = schedule_for(attempts, now=now)
    questions = []
    for q in question_stats(store, bank):
        row = asdict(q)
        sched = schedule.get(q.question_id)
        row["due_at"] = sched.due_at.isoformat() if sched else None
        row["due"] = bool(sched and sched.is_due(now))
        questions.append(row)
    return {
        "attempts": sum(1 for a in attempts if a.outcome == "graded"),
        "errors": sum(1 for a in attempts if a.outcome == "grader_error"),
        "questions_practised": len({a.question_id for a in attempts if a.outcome == "graded"}),
        "questions_total": len(bank),
        "sections": [asdict(s) for s in section_stats(store, bank)],
        "questions": questions,
        "most_missed": [dict(asdict(m), rate=round(m.rate, 2)) for m in missed_key_points(attempts, bank)],
    }


# ------------------------------------------------------------------ grader errors


def pending_errors(store: Store) -> list[Attempt]:
    """Error attempts still worth retrying: for each (question, answer) whose latest attempt
    is a grader error. An answer that was later graded (by a retry or by being typed again)
    is resolved; an answer that failed several times is retried once, not once per failure."""
    latest: dict[tuple[str, str], Attempt] = {}
    for a in all_attempts(store):
        if a.outcome in ("graded", "grader_error"):
            latest[(a.question_id, a.answer)] = a
    return [a for a in latest.values() if a.outcome == "grader_error"]


def retry_errors(store: Store, bank: RubricBank, *, settings: Settings, grader: Grader | None = None,
                 session_id: str | None = None) -> list[tuple[Attempt, Grade, int]]:
    """Grade again every pending error; each result is stored as a new attempt (old rows are
    never rewritten). Returns (the error retried, the new grade, the new attempt id)."""
    import asyncio

    from ..grading import agrade_rubric, make_grader
    from ..store import now_iso

    grader = grader or make_grader(settings)
    session_id = session_id or f"retry-{now_iso()}"
    out = []
    for old in pending_errors(store):
        if old.question_id not in bank.rubrics:
            continue  # the rubric is gone; nothing to grade against
        started = now_iso()
        new = asyncio.run(agrade_rubric(bank.rubrics[old.question_id], old.answer, settings=settings, grader=grader))
        if new.outcome == "skipped":
            continue
        new_id = store.add_attempt(new.model_dump(mode="json"), old.answer, session_id=session_id, started_at=started)
        out.append((old, new, new_id))
    return out

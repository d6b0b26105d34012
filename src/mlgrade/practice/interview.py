"""A mock interview as a library: the draw, each question's main answer and follow-up (graded
as an answer to the follow-up question), the time taken, and what is kept.

An interview is one row of the store's `interviews` table (its whole state as JSON, rewritten
after every step) and its attempts (session_id = the interview id; a follow-up attempt has
kind "follow_up" and parent_id = its main attempt). Every graded answer is stored the moment it
is graded, so a closed terminal loses at most the answer being typed and `resume` continues.
The terminal loop (interview_tui.py) and the CLI are thin layers over this module.
"""

from __future__ import annotations

import asyncio
import json
import random as _random
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .interview_result import InterviewResult, QuestionResult, study_next, verdict

if TYPE_CHECKING:
    from ..config import Settings
    from ..grading import Grader
    from ..models import FollowUp, Grade, Rubric
    from ..rubrics import RubricBank
    from ..store import Store

DEFAULT_QUESTIONS = 5
MINUTES_PER_QUESTION = 6  # the default budget: --minutes is this times --questions
FEEDBACK = ("end", "now")
STATE_VERSION = 1


@dataclass
class InterviewOptions:
    questions: int = DEFAULT_QUESTIONS
    sections: list[str] = field(default_factory=list)  # empty: a mix across every section
    fresh: bool = False  # ignore history in the draw
    minutes: float | None = None  # the whole interview; None: MINUTES_PER_QUESTION each
    seed: int | None = None
    feedback: str = "end"
    ask: list[str] = field(default_factory=list)  # these questions, in this order, instead of a draw

    def __post_init__(self) -> None:
        from ..errors import UsageError

        if self.questions < 1:
            raise UsageError("--questions must be at least 1")
        if self.minutes is not None and not self.minutes > 0:
            raise UsageError("--minutes must be more than 0")
        if self.feedback not in FEEDBACK:
            raise UsageError(f"--feedback must be one of {', '.join(FEEDBACK)}")

    @property
    def total_minutes(self) -> float:
        return self.minutes if self.minutes is not None else MINUTES_PER_QUESTION * self.questions


class Interview:
    """One interview in progress. Questions are answered in order; `current()` is the next step."""

    def __init__(self, store: Store, bank: RubricBank, *, grader: Grader, settings: Settings,
                 interview_id: str, state: dict[str, Any], status: str = "open"):
        self.store, self.bank, self.grader, self.settings = store, bank, grader, settings
        self.id, self.state, self.status = interview_id, state, status

    # ------------------------------------------------------------------ starting

    @classmethod
    def start(cls, store: Store, bank: RubricBank, options: InterviewOptions, *, grader: Grader,
              settings: Settings, report: str | None = None) -> Interview:
        """Draw the questions and store the new interview (nothing is asked yet)."""
        from ..errors import UsageError
        from ..store import now_iso
        from .history import all_attempts
        from .interview_draw import draw

        if options.ask:
            from .interview_draw import Drawn

            drawn = [Drawn(bank.get(q).id, "asked for") for q in options.ask]
        else:
            drawn = draw(bank, [] if options.fresh else all_attempts(store), count=options.questions,
                         sections=options.sections or None, fresh=options.fresh, rng=_random.Random(options.seed))
        if not drawn:
            raise UsageError("no questions to ask with these options")
        state = {
            "version": STATE_VERSION, "created_at": now_iso(), "grader": grader.name, "model": grader.model or "",
            "options": {"questions": options.questions, "sections": options.sections, "fresh": options.fresh,
                        "minutes": options.total_minutes, "seed": options.seed, "feedback": options.feedback},
            "report": report,
            "budget_seconds": options.total_minutes * 60 / len(drawn),
            "questions": [{"question_id": d.question_id, "reason": d.reason, "status": "pending", "seconds": 0.0,
                           "main_attempt": None, "follow_up": None, "follow_up_attempt": None,
                           "follow_up_skipped": False} for d in drawn],
        }
        interview = cls(store, bank, grader=grader, settings=settings, interview_id=uuid.uuid4().hex[:12], state=state)
        interview._save()
        return interview

    @classmethod
    def resume(cls, store: Store, bank: RubricBank, *, grader: Grader, settings: Settings,
               interview_id: str | None = None) -> Interview:
        """The most recent unfinished interview (or the one whose id starts with `interview_id`)."""
        from ..errors import UsageError

        rows = store.interview_rows(interview_id=interview_id, status="open", limit=1)
        if not rows:
            which = f" with id {interview_id}" if interview_id else ""
            raise UsageError(f"no unfinished interview{which} to resume: start one with `mlgrade interview`")
        row = rows[0]
        state = _load_state(row["state_json"], row["id"])
        missing = [q["question_id"] for q in state["questions"] if q["question_id"] not in bank.rubrics]
        if missing:
            raise UsageError(f"interview {row['id']} asks {missing[0]}, which is not in the rubric bank now")
        return cls(store, bank, grader=grader, settings=settings, interview_id=row["id"], state=state)

    # ------------------------------------------------------------------ progress

    @property
    def questions(self) -> list[dict[str, Any]]:
        return self.state["questions"]

    @property
    def budget_seconds(self) -> float:
        return float(self.state["budget_seconds"])

    @property
    def feedback(self) -> str:
        return str(self.state["options"].get("feedback", "end"))

    def rubric(self, index: int) -> Rubric:
        return self.bank.rubrics[self.questions[index]["question_id"]]

    def current(self) -> tuple[int, str] | None:
        """(question index, "main" or "follow_up") of the next answer wanted; None when done."""
        for i, q in enumerate(self.questions):
            if q["status"] == "pending":
                return i, "main"
            if q["status"] == "main":
                return i, "follow_up"
        return None

    def follow_up(self, index: int) -> FollowUp | None:
        """The follow-up chosen for question `index` (after its main answer), from the rubric."""
        chosen = self.questions[index]["follow_up"]
        if chosen is None:
            return None
        rubric = self.rubric(index)
        fus = list(rubric.follow_ups)
        i = chosen.get("index")
        if isinstance(i, int) and 0 <= i < len(fus) and fus[i].question == chosen["question"]:
            return fus[i]
        from ..models import FollowUp

        # the rubric changed since: still ask the same words; not gradable without its key points
        return next((f for f in fus if f.question == chosen["question"]), FollowUp(question=chosen["question"]))

    # ------------------------------------------------------------------ answering

    def answer_main(self, index: int, answer: str, *, seconds: float, started_at: str | None = None) -> Grade:
        """Grade and store the main answer, choose the follow-up; returns the grade. An answer over
        the size limit raises UsageError and changes nothing."""
        from ..grading import agrade_rubric

        rubric = self.rubric(index)
        grade = asyncio.run(agrade_rubric(rubric, answer, settings=self.settings, grader=self.grader))
        q = self.questions[index]
        q["seconds"] = round(q["seconds"] + seconds, 1)
        if grade.outcome == "skipped":  # an empty answer: nothing to store, nothing to follow up
            q["status"] = "skipped"
            self._save()
            return grade
        q["main_attempt"] = self.store.add_attempt(grade.model_dump(mode="json"), answer, session_id=self.id,
                                                   started_at=started_at)
        follow = pick_follow_up(rubric, grade)
        if follow is None:
            q["status"] = "done"
        else:
            q["status"] = "main"
            q["follow_up"] = {"index": list(rubric.follow_ups).index(follow), "question": follow.question}
        self._save()
        return grade

    def answer_follow_up(self, index: int, answer: str, *, seconds: float, started_at: str | None = None) -> Grade:
        """Grade the follow-up answer as an answer to the follow-up question and store it, linked
        to the main attempt. A follow-up without key points gives outcome "skipped" (not graded)."""
        from ..followup import grade_follow_up

        q = self.questions[index]
        follow = self.follow_up(index)
        if follow is None or q["status"] != "main":
            raise ValueError(f"question {index + 1} has no follow-up waiting for an answer")
        main_answer = self.main_answer(index)
        grade = grade_follow_up(self.rubric(index), follow, main_answer, answer, settings=self.settings,
                                grader=self.grader)
        q["seconds"] = round(q["seconds"] + seconds, 1)
        q["follow_up_attempt"] = self.store.add_attempt(
            grade.model_dump(mode="json"), answer, session_id=self.id, started_at=started_at, kind="follow_up",
            parent_id=q["main_attempt"])
        q["status"] = "done"
        self._save()
        return grade

    def skip(self, index: int, *, seconds: float) -> None:
        """The candidate skipped the answer wanted now (the main answer, or only the follow-up)."""
        q = self.questions[index]
        q["seconds"] = round(q["seconds"] + seconds, 1)
        if q["status"] == "main":
            q["follow_up_skipped"] = True
            q["status"] = "done"
        else:
            q["status"] = "skipped"
        self._save()

    def add_time(self, index: int, seconds: float) -> None:
        """Time spent on an answer that was then left (the interview ended on it)."""
        self.questions[index]["seconds"] = round(self.questions[index]["seconds"] + seconds, 1)
        self._save()

    def main_answer(self, index: int) -> str:
        attempt = self.questions[index]["main_attempt"]
        if attempt is None:
            return ""
        row = self.store.db.execute("SELECT answer FROM attempts WHERE id = ?", (attempt,)).fetchone()
        return row[0] if row else ""

    def finish(self, *, ended: bool = False, report_path: str | None = None) -> InterviewResult:
        """Close the interview: "finished" when every question was dealt with, "ended" when the
        candidate stopped early. Either way every graded answer stays."""
        self.status = "finished" if self.current() is None else "ended" if ended else "open"
        if report_path:
            self.state["report"] = report_path
        self._save(report_path=report_path)
        return self.result()

    def result(self) -> InterviewResult:
        return build_result(self.store, self.bank, self.id, self.state, self.status)

    def _save(self, report_path: str | None = None) -> None:
        self.store.interview_put(self.id, self.status, self.state, report_path=report_path)


def pick_follow_up(rubric: Rubric, grade: Grade) -> FollowUp | None:
    """The follow-up to ask after this main answer: `choose_follow_up` (aimed at the weakest part
    of the answer); when it finds none to aim (e.g. the grading failed) but the rubric has
    follow-ups, the first one, as an interviewer would still dig."""
    from ..followup import choose_follow_up

    chosen = choose_follow_up(rubric, grade)
    if chosen is None and rubric.follow_ups:
        chosen = rubric.follow_ups[0]
    return chosen


def _load_state(text: str, interview_id: str) -> dict[str, Any]:
    from ..errors import UsageError

    try:
        state = json.loads(text)
    except ValueError:
        state = None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION or not isinstance(state.get("questions"), list):
        raise UsageError(f"interview {interview_id} is stored in a shape this version cannot read")
    return state


def build_result(store: Store, bank: RubricBank, interview_id: str, state: dict[str, Any], status: str,
                 report_path: str | None = None) -> InterviewResult:
    """The interview's result from its stored state and attempts (also for `history interviews ID`)."""
    from .history import get

    questions = []
    for i, q in enumerate(state["questions"]):
        rubric = bank.rubrics.get(q["question_id"])
        main = get(store, q["main_attempt"]) if q.get("main_attempt") else None
        follow = get(store, q["follow_up_attempt"]) if q.get("follow_up_attempt") else None
        questions.append(QuestionResult(
            number=i + 1, question_id=q["question_id"], question=rubric.question if rubric else "",
            section=rubric.section if rubric else "?", reason=q.get("reason", ""), status=q["status"],
            main=main.to_grade() if main else None, main_answer=main.answer if main else "",
            follow_up_question=(q.get("follow_up") or {}).get("question", ""),
            follow_up=follow.to_grade() if follow else None, follow_up_answer=follow.answer if follow else "",
            follow_up_skipped=bool(q.get("follow_up_skipped")), seconds=float(q.get("seconds") or 0.0),
            budget_seconds=float(state.get("budget_seconds") or 0.0),
            main_attempt=q.get("main_attempt"), follow_up_attempt=q.get("follow_up_attempt"),
        ))
    scores = [s for s in (q.score for q in questions) if s is not None]
    options = state.get("options", {})
    return InterviewResult(
        interview_id=interview_id, status=status, created_at=state.get("created_at", ""),
        grader=state.get("grader", ""), model=state.get("model", ""), minutes=float(options.get("minutes") or 0),
        feedback=options.get("feedback", "end"), questions=questions, verdict=verdict(scores),
        study=study_next(questions, bank.rubrics), report_path=report_path or state.get("report"),
    )


# --------------------------------------------------------------------------- history


@dataclass
class InterviewRow:
    interview_id: str
    status: str
    created_at: str
    updated_at: str
    questions: int
    answered: int
    report_path: str | None


def list_interviews(store: Store, *, limit: int | None = 20) -> list[InterviewRow]:
    rows = []
    for r in store.interview_rows(limit=limit):
        try:
            state = _load_state(r["state_json"], r["id"])
        except Exception:  # a row this version cannot read is listed, not a crash
            state = {"questions": []}
        qs = state["questions"]
        rows.append(InterviewRow(r["id"], r["status"], r["created_at"], r["updated_at"], len(qs),
                                 sum(1 for q in qs if q.get("status") in ("main", "done")), r["report_path"]))
    return rows


def load_result(store: Store, bank: RubricBank, interview_id: str) -> InterviewResult:
    """A stored interview's result, by id or id prefix. UsageError when there is none."""
    from ..errors import UsageError

    rows = store.interview_rows(interview_id=interview_id, limit=2)
    if not rows:
        raise UsageError(f"no interview {interview_id!r} (see `mlgrade history interviews`)")
    if len(rows) > 1 and rows[0]["id"] != interview_id:
        raise UsageError(f"{interview_id!r} matches several interviews: give more of the id")
    row = rows[0]
    return build_result(store, bank, row["id"], _load_state(row["state_json"], row["id"]), row["status"],
                        report_path=row["report_path"])

"""A person's review of batch results: the queue (flagged grades first, reviewed ones last),
decisions appended to `<results>.reviews.jsonl`, and the reviewer's scores read back for
reports and `eval --reviews`.

Every decision is one JSON line, appended and flushed the moment it is made, so quitting at
any point loses nothing; reading takes the last line per id (a later decision replaces an
earlier one). The terminal screen (`mlgrade review`) is a thin layer over `ReviewSession`.

>>> from mlgrade.batch.reviews import ReviewSession
>>> s = ReviewSession("results.jsonl")  # doctest: +SKIP
>>> item = s.current(); s.override(score=55, note="misses the leakage point")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError, quote_name
from ..models import Grade, Rubric
from ..review import REASONS
from ..rubrics import RubricBank, rubric_hash
from ..textfiles import refuse_special
from .decisions import (Decision, check_ours, append_decision, iter_decisions, load_decisions, make_decision,
                        parse_verdict, reviews_path)
from .lines import Problems, iter_records

__all__ = ["Decision", "QueueEntry", "ReviewItem", "ReviewSession", "append_decision", "build_queue", "iter_decisions",
           "load_decisions", "make_decision", "parse_verdict", "read_record", "reviewed_pairs", "reviews_path"]

# --------------------------------------------------------------------------- the queue


@dataclass(frozen=True)
class QueueEntry:
    offset: int  # byte offset of the results line, read back when shown
    id: str
    question_id: str
    candidate: str | None
    score: float | None
    band: str | None
    reasons: tuple[str, ...]
    decided: bool

    @property
    def needed(self) -> bool:
        return bool(self.reasons)


def _severity(reasons: tuple[str, ...]) -> int:
    return min((REASONS.index(r) for r in reasons if r in REASONS), default=len(REASONS))


def build_queue(results: str | Path, decisions: dict[str, Decision] | None = None,
                problems: Problems | None = None) -> list[QueueEntry]:
    """The graded results in review order: flagged and undecided first (most serious reason first,
    then most reasons), then the unflagged, then everything already decided. Skipped and
    grader_error lines are not in it: they have their own outcome and no score to check."""
    decisions = decisions or {}
    entries = []
    for offset, rec in iter_records(Path(results), problems=problems):
        if rec.get("outcome") != "graded":
            continue
        review = rec.get("review") or {}
        reasons = tuple(review.get("reasons") or ()) if review.get("needed") else ()
        rid = str(rec.get("id"))
        entries.append(QueueEntry(offset, rid, rec.get("question_id") or "", rec.get("candidate"), rec.get("score"),
                                  rec.get("band"), reasons, rid in decisions))
    order = {id(e): i for i, e in enumerate(entries)}
    return sorted(entries, key=lambda e: (e.decided, not e.needed, _severity(e.reasons), -len(e.reasons), order[id(e)]))


def read_record(results: str | Path, offset: int) -> dict[str, Any]:
    with Path(results).open("rb") as fh:
        fh.seek(offset)
        return json.loads(fh.readline())


def answer_of(record: dict[str, Any], bank: RubricBank | None = None) -> str | None:
    """The graded answer: in the line itself (results written since review existed), else read
    back from the input named by `source` when it is still there and unchanged; None if not."""
    if isinstance(record.get("answer"), str):
        return record["answer"]
    source = str(record.get("source") or "")
    path = source.rsplit(":", 1)[0] if ":" in source else source
    if not path or not Path(path).exists() or bank is None:
        return None
    try:
        from .inputs import iter_items

        for item in iter_items([path], bank):
            if item.id == record.get("id"):
                return item.answer
    except Exception:  # the input moved, changed or no longer parses: the review shows evidence only
        return None
    return None


@dataclass
class ReviewItem:
    """What the screen shows for one result."""

    position: int  # 0-based place in the queue
    total: int
    record: dict[str, Any]
    grade: Grade
    answer: str | None
    rubric: Rubric | None
    decision: Decision | None  # the standing decision, if any

    @property
    def rubric_changed(self) -> bool:
        """The rubric has changed since this answer was graded."""
        return bool(self.rubric and self.grade.rubric_hash and rubric_hash(self.rubric) != self.grade.rubric_hash)


class ReviewSession:
    """Walk the queue: accept, override, skip, back. Decisions are on disk as soon as they are made."""

    def __init__(self, results: str | Path, *, reviews: str | Path | None = None, bank: RubricBank | None = None,
                 reviewer: str | None = None):
        self.reviewer = reviewer  # None: the login name
        self.results = Path(results)
        if not self.results.is_file():
            raise UsageError(f"{self.results}: no such results file")
        self.reviews = Path(reviews) if reviews is not None else reviews_path(self.results)
        check_ours(self.reviews)
        if bank is None:
            from ..rubrics import load_rubrics

            bank = load_rubrics()
        self.bank = bank
        self.decisions = load_decisions(self.reviews)
        self.problems = Problems(self.results)  # corrupt lines left out of the queue: `warnings()`
        self.queue = build_queue(self.results, self.decisions, self.problems)
        if not self.queue:
            raise UsageError(f"{self.results}: no graded results to review")
        self.position = 0
        self.made: list[Decision] = []  # this session's decisions, in order

    def exclusive(self) -> Any:
        """A lock on the decisions file for as long as a person works through this session: a second
        session on the same file (another terminal, another name for it) is refused with the pid
        holding it, instead of two reviewers silently overriding each other's decisions."""
        from .lock import ResultsLock

        return ResultsLock(self.reviews, hint="finish that review first, or review into another file with --reviews")

    def warnings(self) -> list[str]:
        """One line per corrupt results line left out (`FILE:LINE: reason`), the first few and a count."""
        return [f"{line} (left out of the review)" for line in self.problems.lines()]

    @property
    def flagged(self) -> int:
        return sum(e.needed for e in self.queue)

    @property
    def done(self) -> bool:
        return self.position >= len(self.queue)

    def current(self) -> ReviewItem:
        if self.done:
            raise IndexError("the review queue is finished")
        entry = self.queue[self.position]
        record = read_record(self.results, entry.offset)
        try:
            grade = Grade.model_validate(record)
        except ValueError as exc:  # passed the line check but not the Grade model (an unknown reason…)
            self.problems.count += 1
            self.problems.shown.append(f"{self.results}: result {quote_name(entry.id)} left out of the review "
                                       f"({str(exc).splitlines()[0]})")
            del self.queue[self.position]
            if not self.queue:
                raise UsageError(f"{self.results}: no valid graded results to review") from None
            return self.current()
        rubric = self.bank.rubrics.get(entry.question_id) if self.bank else None
        return ReviewItem(self.position, len(self.queue), record, grade,
                          answer_of(record, self.bank), rubric, self.decisions.get(entry.id))

    def _decide(self, action: str, **kwargs: Any) -> Decision:
        item = self.current()
        decision = make_decision(item.record, action, reviewer=self.reviewer, **kwargs)
        append_decision(self.reviews, decision)
        self.decisions[decision.id] = decision
        self.made.append(decision)
        self.position += 1
        return decision

    def accept(self, note: str = "") -> Decision:
        return self._decide("accept", note=note)

    def override(self, *, score: float | None = None, band: str | None = None, note: str = "") -> Decision:
        return self._decide("override", score=score, band=band, note=note)

    def skip(self) -> None:
        if not self.done:
            self.position += 1

    def back(self) -> bool:
        """One item back; False when already at the first."""
        if self.position == 0:
            return False
        self.position -= 1
        return True


# --------------------------------------------------------------------------- for reports and eval


def reviewed_pairs(results: str | Path, reviews: str | Path | None = None,
                   warn: Callable[[str], Any] | None = None) -> list[dict[str, Any]]:
    """mlgrade's grade next to the reviewer's, one dict per reviewed graded result (results order).
    `stale` marks a decision made on another grading of the line (its hashes differ). `warn` is
    told the reviews lines left out."""
    path = Path(reviews) if reviews is not None else reviews_path(results)
    refuse_special(path, "a reviews file (JSON lines written by `mlgrade review`)")
    if not path.is_file():
        raise UsageError(f"{path}: no such reviews file (it is written by `mlgrade review`)")
    decisions = load_decisions(path, warn)
    pairs = []
    for _, rec in iter_records(Path(results)):
        d = decisions.get(str(rec.get("id")))
        if d is None or rec.get("outcome") != "graded":
            continue
        pairs.append({"id": d.id, "question_id": rec.get("question_id"), "candidate": rec.get("candidate"),
                      "grader": rec.get("grader") or "", "mlgrade_score": rec.get("score"), "mlgrade_band": rec.get("band"),
                      "reviewer_score": d.score, "reviewer_band": d.band, "decision": d.decision,
                      "needed": bool((rec.get("review") or {}).get("needed")),
                      "stale": (d.rubric_hash, d.prompt_hash) != (rec.get("rubric_hash") or "", rec.get("prompt_hash") or "")})
    return pairs

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
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import UsageError
from ..models import Band, Grade, Rubric
from ..review import REASONS
from ..rubrics import RubricBank, rubric_hash
from ..scoring import band_for
from .report import iter_records

SUFFIX = ".reviews.jsonl"
BANDS: tuple[str, ...] = ("strong", "adequate", "weak", "poor")


def reviews_path(results: str | Path) -> Path:
    """`results.jsonl` → `results.reviews.jsonl`, beside it."""
    path = Path(results)
    stem = path.name[: -len(".jsonl")] if path.name.endswith(".jsonl") else path.name
    return path.with_name(stem + SUFFIX)


class Decision(BaseModel):
    """One line of the reviews file."""

    model_config = ConfigDict(extra="ignore")

    id: str
    question_id: str = ""
    candidate: str | None = None
    decision: Literal["accept", "override"]
    score: float | None = Field(default=None, ge=0, le=100)  # what the reviewer stands by (mlgrade's on accept)
    band: Band | None = None
    mlgrade_score: float | None = None
    mlgrade_band: Band | None = None
    note: str = ""
    reasons: list[str] = Field(default_factory=list)  # the review flags shown to the reviewer
    rubric_hash: str = ""
    prompt_hash: str = ""
    grader: str = ""
    model: str = ""
    reviewer: str = ""
    decided_at: str = ""


def _parse_decision(line: bytes) -> Decision | None:
    try:
        return Decision.model_validate(json.loads(line))
    except (ValueError, ValidationError):
        return None


def iter_decisions(path: str | Path) -> Iterator[Decision]:
    """Every valid decision in file order; a torn last line or a foreign line is passed over."""
    path = Path(path)
    if not path.is_file():
        return
    with path.open("rb") as fh:
        for line in fh:
            if line.endswith(b"\n") and line.strip():
                d = _parse_decision(line)
                if d is not None:
                    yield d


def load_decisions(path: str | Path) -> dict[str, Decision]:
    """The standing decision per result id: the last one written."""
    return {d.id: d for d in iter_decisions(path)}


def _check_ours(path: Path) -> None:
    """Refuse to append to a file mlgrade did not write (its first complete line must be a decision)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb") as fh:
        first = fh.readline()
    if not first.endswith(b"\n") or _parse_decision(first) is None:
        raise UsageError(f"{path}: exists and is not an mlgrade reviews file; move it away or choose another --reviews")


def append_decision(path: str | Path, decision: Decision) -> None:
    """Append one decision and push it to disk before returning. A torn last line left by a
    crash is cut off first so the new line starts clean."""
    path = Path(path)
    _check_ours(path)
    if path.exists() and path.stat().st_size:
        with path.open("rb") as fh:
            data = fh.read()
        if not data.endswith(b"\n"):
            os.truncate(path, data.rfind(b"\n") + 1)
    line = json.dumps(decision.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":")) + "\n"
    with path.open("a", encoding="utf-8", newline="\n") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def parse_verdict(text: str) -> tuple[float | None, str | None]:
    """The reviewer's own grade as typed: a score 0–100 ("55", "72.5") or a band ("weak", or its
    first letter). Raises UsageError with the reason otherwise."""
    value = text.strip().lower()
    if not value:
        raise UsageError("type a score from 0 to 100 or a band (strong, adequate, weak, poor)")
    for band in BANDS:
        if value == band or value == band[0]:
            return None, band
    try:
        score = float(value)
    except ValueError:
        raise UsageError(f"{text.strip()!r} is neither a score from 0 to 100 nor a band (strong, adequate, weak, poor)") from None
    if not 0 <= score <= 100:
        raise UsageError(f"{score:g} is outside 0–100")
    return round(score, 1), None


def make_decision(record: dict[str, Any], action: str, *, score: float | None = None, band: str | None = None,
                  note: str = "", reviewer: str | None = None) -> Decision:
    """A decision on one results line. `accept` keeps mlgrade's score; `override` needs a score
    (its band follows) or a band alone."""
    from ..store import now_iso

    if action == "accept":
        score, band = record.get("score"), record.get("band")
    elif action == "override":
        if score is None and band is None:
            raise UsageError("an override needs a score or a band")
        if score is not None:
            if not 0 <= score <= 100:
                raise UsageError(f"{score:g} is outside 0–100")
            band = band_for(score) if band is None else band
        if band not in BANDS:
            raise UsageError(f"unknown band {band!r}: choose strong, adequate, weak or poor")
    else:
        raise UsageError(f"unknown decision {action!r}: accept or override")
    review = record.get("review") or {}
    return Decision(id=str(record.get("id")), question_id=record.get("question_id") or "", candidate=record.get("candidate"),
                    decision=action, score=score, band=band, mlgrade_score=record.get("score"),  # type: ignore[arg-type]
                    mlgrade_band=record.get("band"), note=note.strip(), reasons=list(review.get("reasons") or []),
                    rubric_hash=record.get("rubric_hash") or "", prompt_hash=record.get("prompt_hash") or "",
                    grader=record.get("grader") or "", model=record.get("model") or "",
                    reviewer=reviewer if reviewer is not None else _whoami(), decided_at=now_iso())


def _whoami() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # no user name in this environment: the decision stands without one
        return ""


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


def build_queue(results: str | Path, decisions: dict[str, Decision] | None = None) -> list[QueueEntry]:
    """The graded results in review order: flagged and undecided first (most serious reason first,
    then most reasons), then the unflagged, then everything already decided. Skipped and
    grader_error lines are not in it: they have their own outcome and no score to check."""
    decisions = decisions or {}
    entries = []
    for offset, rec in iter_records(Path(results)):
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

    def __init__(self, results: str | Path, *, reviews: str | Path | None = None, bank: RubricBank | None = None):
        self.results = Path(results)
        if not self.results.is_file():
            raise UsageError(f"{self.results}: no such results file")
        self.reviews = Path(reviews) if reviews is not None else reviews_path(self.results)
        _check_ours(self.reviews)
        if bank is None:
            from ..rubrics import load_rubrics

            bank = load_rubrics()
        self.bank = bank
        self.decisions = load_decisions(self.reviews)
        self.queue = build_queue(self.results, self.decisions)
        if not self.queue:
            raise UsageError(f"{self.results}: no graded results to review")
        self.position = 0
        self.made: list[Decision] = []  # this session's decisions, in order

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
        rubric = self.bank.rubrics.get(entry.question_id) if self.bank else None
        return ReviewItem(self.position, len(self.queue), record, Grade.model_validate(record),
                          answer_of(record, self.bank), rubric, self.decisions.get(entry.id))

    def _decide(self, action: str, **kwargs: Any) -> Decision:
        item = self.current()
        decision = make_decision(item.record, action, **kwargs)
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


def reviewed_pairs(results: str | Path, reviews: str | Path | None = None) -> list[dict[str, Any]]:
    """mlgrade's grade next to the reviewer's, one dict per reviewed graded result (results order).
    `stale` marks a decision made on another grading of the line (its hashes differ)."""
    path = Path(reviews) if reviews is not None else reviews_path(results)
    if not path.is_file():
        raise UsageError(f"{path}: no such reviews file (it is written by `mlgrade review`)")
    decisions = load_decisions(path)
    pairs = []
    for _, rec in iter_records(Path(results)):
        d = decisions.get(str(rec.get("id")))
        if d is None or rec.get("outcome") != "graded":
            continue
        pairs.append({"id": d.id, "question_id": rec.get("question_id"), "candidate": rec.get("candidate"),
                      "mlgrade_score": rec.get("score"), "mlgrade_band": rec.get("band"),
                      "reviewer_score": d.score, "reviewer_band": d.band, "decision": d.decision,
                      "needed": bool((rec.get("review") or {}).get("needed")),
                      "stale": (d.rubric_hash, d.prompt_hash) != (rec.get("rubric_hash") or "", rec.get("prompt_hash") or "")})
    return pairs

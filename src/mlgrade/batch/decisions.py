"""The reviews file beside a results file: one JSON line per reviewer decision, appended and
flushed as it is made; the last line per id stands. Read by reports (the reviewer's score
beside mlgrade's) and by the review queue (mlgrade.batch.reviews)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import UsageError, quote_name
from ..models import Band
from ..scoring import band_for

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


def reviewed(rec: dict[str, Any], decisions: dict[str, Decision]) -> dict[str, Any]:
    """The result line as reports count it: a reviewer's override replaces mlgrade's score and
    band (which stay as `mlgrade_score`/`mlgrade_band`, the mark of an override), as in the gradebook."""
    d = decisions.get(str(rec.get("id"))) if decisions else None
    if d is None or d.decision != "override" or d.score is None or rec.get("outcome") != "graded":
        return rec
    return {**rec, "score": d.score, "band": d.band or band_for(d.score),
            "mlgrade_score": rec.get("score"), "mlgrade_band": rec.get("band")}


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


def check_ours(path: Path) -> None:
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
    check_ours(path)
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
        raise UsageError(f"{quote_name(text.strip())} is neither a score from 0 to 100 nor a band (strong, adequate, weak, poor)") from None
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
            raise UsageError(f"unknown band {quote_name(band)}: choose strong, adequate, weak or poor")
    else:
        raise UsageError(f"unknown decision {quote_name(action)}: accept or override")
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

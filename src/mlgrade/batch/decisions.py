"""The reviews file beside a results file: one JSON line per reviewer decision, appended and
flushed as it is made; the last line per id stands. Read by reports (the reviewer's score
beside mlgrade's) and by the review queue (mlgrade.batch.reviews)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import UsageError, quote_name
from ..models import Band
from ..scoring import band_for
from ..textfiles import refuse_special
from .lines import Problems

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


    @model_validator(mode="after")
    def _band_follows_score(self) -> Decision:
        # a hand-edited override may carry a score alone: its band follows, as when one is typed
        if self.band is None and self.score is not None:
            self.band = band_for(self.score)
        if self.band is None:
            raise ValueError("a decision needs a score or a band")
        return self


MAX_DECISION_BYTES = 64 * 1024  # a decision with its note: a longer line is not one mlgrade wrote


def reviewed(rec: dict[str, Any], decisions: dict[str, Decision]) -> dict[str, Any]:
    """The result line as reports count it: a reviewer's override replaces mlgrade's score and
    band (which stay as `mlgrade_score`/`mlgrade_band`, the mark of an override), as in the gradebook."""
    d = decisions.get(str(rec.get("id"))) if decisions else None
    if d is None or d.decision != "override" or d.score is None or rec.get("outcome") != "graded":
        return rec
    return {**rec, "score": d.score, "band": d.band or band_for(d.score),
            "mlgrade_score": rec.get("score"), "mlgrade_band": rec.get("band")}


def _decision_or_why(line: bytes) -> tuple[Decision | None, str]:
    try:
        return Decision.model_validate(json.loads(line)), ""
    except RecursionError:
        return None, "JSON nested too deeply"
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        return None, f"{where + ': ' if where else ''}{err['msg'].removeprefix('Value error, ')}"
    except ValueError:
        return None, "not a JSON object"


def _parse_decision(line: bytes) -> Decision | None:
    return _decision_or_why(line)[0]


def _bounded_lines(fh: Any) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line) for each complete line; None for a line over MAX_DECISION_BYTES, which is
    read on to its end but never held (a 300 MB note costs no memory)."""
    lineno = 0
    while True:
        line = fh.readline(MAX_DECISION_BYTES + 1)
        if not line:
            return
        lineno += 1
        if len(line) > MAX_DECISION_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = fh.readline(1 << 20)
            yield lineno, None
            continue
        if line.endswith(b"\n"):  # a torn last line (a crash mid-append) is not a decision yet
            yield lineno, line


def iter_decisions(path: str | Path, problems: Problems | None = None) -> Iterator[Decision]:
    """Every valid decision in file order; a torn last line is passed over, and every other line
    that is not a decision (edited by hand, deeply nested, huge) is left out and told to `problems`."""
    path = Path(path)
    refuse_special(path, "a reviews file (JSON lines written by `mlgrade review`)")
    if not path.is_file():
        return
    with path.open("rb") as fh:
        for lineno, line in _bounded_lines(fh):
            if line is None:
                why = f"longer than {MAX_DECISION_BYTES // 1024} KB"
            elif not line.strip():
                continue
            else:
                d, why = _decision_or_why(line)
                if d is not None:
                    yield d
                    continue
            if problems is not None:
                problems.add(lineno, why)


def load_decisions(path: str | Path, warn: Callable[[str], Any] | None = None) -> dict[str, Decision]:
    """The standing decision per result id: the last one written. `warn(message)` is told each line
    left out (the first few, then how many more), as for results lines."""
    problems = Problems(Path(path))
    decisions = {d.id: d for d in iter_decisions(path, problems)}
    if warn is not None:
        for message in problems.lines():
            warn(message.replace("corrupt line(s)", "line(s) that are not decisions"))
    return decisions


def check_ours(path: Path) -> None:
    """Refuse to append to a file mlgrade did not write (its first complete line must be a decision)."""
    refuse_special(path, "a reviews file (JSON lines written by `mlgrade review`)")
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

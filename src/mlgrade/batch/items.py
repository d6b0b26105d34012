"""One answer to grade (`BatchItem`) and the checks every row goes through, whatever file it
came from: question id known, answer present and text, a stable id when none is given."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import quote_name
from ..rubrics import RubricBank, normalise_id

@dataclass
class BatchItem:
    id: str
    question_id: str  # normalised when the question is known, else as given
    answer: str
    source: str  # "file:line" (or "file" for one answer per file)
    candidate: str | None = None
    skip_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.skip_reason is None


def stable_id(question_id: str, answer: str, position: str) -> str:
    """Readable and deterministic: `q07-` plus 12 hex digits of a hash of the row."""
    digest = hashlib.sha256(f"{question_id}\0{answer}\0{position}".encode("utf-8", "surrogatepass")).hexdigest()[:12]
    prefix = re.sub(r"[^a-z0-9]+", "", question_id.lower())[:12] or "row"
    return f"{prefix}-{digest}"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def item_from_row(row: Any, source: str, position: str, bank: RubricBank) -> BatchItem:
    """Validate one row (a mapping with question_id, answer, optional id, candidate)."""
    if not isinstance(row, Mapping):
        return BatchItem(id=stable_id("", repr(row), position), question_id="", answer="", source=source,
                         skip_reason=f"expected an object with question_id and answer, got {type(row).__name__}")
    raw_qid = _text(row.get("question_id"))
    answer = row.get("answer")
    candidate = _text(row.get("candidate"))
    given_id = _text(row.get("id"))
    qid = normalise_id(raw_qid) if raw_qid and raw_qid.strip() else ""
    answer_text = answer if isinstance(answer, str) else ""
    item = BatchItem(id=given_id.strip() if given_id and given_id.strip() else stable_id(qid, answer_text, position),
                     question_id=qid or (raw_qid or ""), answer=answer_text, source=source, candidate=candidate or None)
    if not qid:
        item.skip_reason = "missing question_id"
    elif qid not in bank.rubrics:
        item.skip_reason = f"unknown question id {quote_name(raw_qid)}"
    elif answer is None:
        item.skip_reason = "missing answer"
    elif not isinstance(answer, str):
        item.skip_reason = f"answer must be text, got {type(answer).__name__}"
    return item


def iter_rows(rows: Iterable[Mapping[str, Any]], bank: RubricBank, label: str = "<rows>") -> Iterator[BatchItem]:
    """Python callers may pass rows (dicts) instead of files."""
    for index, row in enumerate(rows, start=1):
        yield item_from_row(row, f"{label}:{index}", f"{label}:{index}", bank)

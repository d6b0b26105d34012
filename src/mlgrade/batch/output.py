"""The batch output file: append-only JSON Lines that doubles as the resume journal.

Each finished result is written as one complete line and flushed, so after a crash (even
`kill -9`) the file holds whole lines plus at most one partial last line, which `recover()`
detects and cuts off. Rerunning then skips every id already present.

To stay memory-flat on huge files, recovery keeps only 64-bit hashes of the ids it has seen.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator
from typing import IO, Any

FINAL_OUTCOMES = ("graded", "skipped")  # grader_error is final too, unless --retry-errors


def id_key(item_id: str) -> int:
    """A 64-bit hash of an id: a set of these costs a fraction of a set of strings."""
    return int.from_bytes(hashlib.blake2b(item_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


@dataclass
class Recovery:
    done: set[int] = field(default_factory=set)
    outcomes: Counter[str] = field(default_factory=Counter)  # of the lines kept
    truncated_bytes: int = 0  # a partial last line cut off (a crash mid-write)
    dropped_errors: int = 0  # grader_error lines removed for --retry-errors
    corrupt_lines: int = 0  # complete lines that are not valid result JSON (removed)

    @property
    def kept(self) -> int:
        return sum(self.outcomes.values())


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or "outcome" not in data:
        return None
    return data


def recover(path: Path, *, retry_errors: bool = False, dry_run: bool = False) -> Recovery:
    """Read an existing output file: which ids are finished, and repair it for appending.

    Repairs (skipped when `dry_run`): a partial last line is truncated away; with
    `retry_errors`, grader_error lines (and any corrupt line) are removed by rewriting the
    file through a temporary copy and an atomic rename, so every id stays in it exactly once.
    """
    rec = Recovery()
    if not path.exists():
        return rec
    rewrite = False
    good_end = 0  # byte offset just past the last complete line
    with path.open("rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                rec.truncated_bytes = len(line)
                break
            good_end += len(line)
            if not line.strip():
                continue
            data = _parse(line)
            if data is None:
                rec.corrupt_lines += 1
                rewrite = True
                continue
            if retry_errors and data["outcome"] == "grader_error":
                rec.dropped_errors += 1
                rewrite = True
                continue
            key = id_key(data["id"])
            if key in rec.done:
                continue  # a duplicate from an older, interrupted rewrite: the first one wins
            rec.done.add(key)
            rec.outcomes[data["outcome"]] += 1
    if dry_run:
        return rec
    if rec.truncated_bytes:
        os.truncate(path, good_end)
    if rewrite:
        _rewrite_without(path, retry_errors=retry_errors)
    return rec


def _rewrite_without(path: Path, *, retry_errors: bool) -> None:
    tmp = path.with_name(path.name + ".rewrite.tmp")
    seen: set[int] = set()
    with path.open("rb") as src, tmp.open("wb") as dst:
        for line in src:
            data = _parse(line) if line.strip() else None
            if data is None or (retry_errors and data["outcome"] == "grader_error"):
                continue
            key = id_key(data["id"])
            if key in seen:
                continue
            seen.add(key)
            dst.write(line)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(tmp, path)


class OutputWriter:
    """Appends one result per line and flushes it: a crash loses at most the line being written."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = path.open("a", encoding="utf-8", newline="\n")
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._fh.flush()
        self.lines += 1

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def __enter__(self) -> OutputWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def result_record(item_id: str, grade: dict[str, Any], *, candidate: str | None, source: str,
                  cached: bool = False, answer: str | None = None) -> dict[str, Any]:
    """One output line: the `grade --json` contract plus the input's id, candidate and source, and
    the answer that was graded (so `mlgrade review` can show it with its evidence highlighted)."""
    record: dict[str, Any] = {"id": item_id, "candidate": candidate, "source": source}
    record.update(grade)
    if cached:
        record["cached"] = True
    if answer is not None and grade.get("outcome") != "skipped":  # a skipped answer is empty or oversize
        record["answer"] = answer
    return record


def needs_review(rec: dict[str, Any]) -> bool:
    """A graded line whose review flags say a person should check it (older lines have none)."""
    review = rec.get("review")
    return rec.get("outcome") == "graded" and isinstance(review, dict) and bool(review.get("needed"))


def iter_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(byte offset, record) for each complete, valid line; a partial last line is ignored."""
    offset = 0
    with path.open("rb") as fh:
        for line in fh:
            start, offset = offset, offset + len(line)
            if not line.endswith(b"\n") or not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and "outcome" in rec:
                yield start, rec

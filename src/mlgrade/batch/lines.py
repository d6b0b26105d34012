"""Reading a results file back: the last valid result per id, in file order, without holding
the file (reports, the review queue and the batch summary all read through here)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .output import id_key


def needs_review(rec: dict[str, Any]) -> bool:
    """A graded line whose review flags say a person should check it (older lines have none)."""
    review = rec.get("review")
    return rec.get("outcome") == "graded" and isinstance(review, dict) and bool(review.get("needed"))


def _all_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    offset = 0
    with path.open("rb") as fh:
        for line in fh:
            start, offset = offset, offset + len(line)
            if not line.endswith(b"\n") or not line.strip():
                continue
            try:
                rec = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(rec, dict) and "outcome" in rec:
                yield start, rec


_ID_PREFIX = re.compile(rb'^\{"id":\s*("(?:[^"\\]|\\.)*")')
_BLOOM_BITS = 1 << 23  # 1 MiB: ~1 % false candidates at 100k ids, each settled exactly in a second pass


def _line_ids(path: Path) -> Iterator[tuple[int, int]]:
    """(byte offset, id hash) of every complete result line, reading the id without parsing the
    whole line where it comes first (as mlgrade writes it)."""
    offset = 0
    with path.open("rb") as fh:
        for line in fh:
            start, offset = offset, offset + len(line)
            if not line.endswith(b"\n") or not line.strip():
                continue
            m = _ID_PREFIX.match(line)
            try:
                if m is not None and b'"outcome"' in line:
                    yield start, id_key(str(json.loads(m.group(1))))
                    continue
                rec = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(rec, dict) and "outcome" in rec:
                yield start, id_key(str(rec.get("id")))


def superseded(path: Path) -> tuple[dict[int, int], int]:
    """For ids with more than one result: id hash -> offset of the last one; and how many older
    results they hide. Memory stays small: a 1 MiB bit filter finds the candidates, and only
    those are counted exactly."""
    bits = bytearray(_BLOOM_BITS // 8)
    candidates: set[int] = set()
    for _, key in _line_ids(path):
        slot = key % _BLOOM_BITS
        if bits[slot >> 3] & (1 << (slot & 7)):
            candidates.add(key)
        else:
            bits[slot >> 3] |= 1 << (slot & 7)
    if not candidates:
        return {}, 0
    seen: dict[int, int] = {}
    last: dict[int, int] = {}
    for off, key in _line_ids(path):
        if key in candidates:
            seen[key] = seen.get(key, 0) + 1
            last[key] = off
    dups = {k: last[k] for k, n in seen.items() if n > 1}
    return dups, sum(n - 1 for n in seen.values() if n > 1)


def iter_records(path: Path, dups: dict[int, int] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(byte offset, record) of the last valid result per id, in file order; a partial last line
    is ignored, and so is an older result for an id that appears again later."""
    if dups is None:
        dups, _ = superseded(path)
    for off, rec in _all_records(path):
        if dups:
            last = dups.get(id_key(str(rec.get("id"))))
            if last is not None and last != off:
                continue
        yield off, rec

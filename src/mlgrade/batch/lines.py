"""Reading a results file back: the last valid result per id, in file order, without holding
the file (reports, the gradebook, the review queue, the batch summary and resume all read
through here).

`check_record` is the one validation of a results line: a line edited by hand or written by
another tool with the wrong types (a text score, a dict candidate, a list review…) is corrupt,
reported as `FILE:LINE: reason` through a `Problems` collector, and left out; the rest of the
file is used. It checks types only, without building models, so reading stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..textfiles import RESULT_OUTCOMES, read_result_line, result_shape_problem

OUTCOMES = RESULT_OUTCOMES
_STATUSES = ("covered", "partial", "missing")
_BANDS = ("strong", "adequate", "weak", "poor")
MAX_SHOWN_PROBLEMS = 5


def id_key(item_id: str) -> int:
    """A 64-bit hash of an id: a set of these costs a fraction of a set of strings."""
    return int.from_bytes(hashlib.blake2b(item_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


def answer_digest(answer: str) -> str:
    """A short hash of an answer's text, stored in each results line so a rerun can tell a changed answer."""
    return hashlib.blake2b(answer.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _opt_str(rec: dict[str, Any], *names: str) -> str | None:
    for n in names:
        v = rec.get(n)
        if v is not None and not isinstance(v, str):
            return f"{n} is not text ({type(v).__name__})"
    return None


def check_record(rec: Any) -> str | None:
    """Why a parsed line is not a usable result line, or None when it is. Every reader of results
    lines goes through this, so a wrong type never reaches arithmetic or a dict lookup."""
    return result_shape_problem(rec) or _field_problem(rec)


def _field_problem(rec: dict[str, Any]) -> str | None:
    """What `check_record` adds to the shape test of textfiles: every field's type."""
    if not isinstance(rec["question_id"], str):
        return "question_id is missing or not text"
    why = _opt_str(rec, "candidate", "source", "band", "error", "answer", "answer_sha", "rubric_hash", "prompt_hash",
                   "grader", "model", "follow_up")
    if why:
        return why
    score = rec.get("score")
    if score is not None and not _num(score):
        return f"score is not a number ({str(score)[:40]!r})"
    if rec["outcome"] == "graded" and score is None:
        return "a graded line without a score"
    if rec.get("band") is not None and rec["band"] not in _BANDS:
        return f"band {rec['band'][:40]!r} is not one of {', '.join(_BANDS)}"
    if rec.get("cost_usd") is not None and not _num(rec["cost_usd"]):
        return "cost_usd is not a number"
    usage = rec.get("usage")
    if usage is not None:
        if not isinstance(usage, dict):
            return "usage is not an object"
        if any(v is not None and not _num(v) for v in usage.values()):
            return "usage holds a value that is not a number"
    for name in ("judgments", "misconceptions", "improvements", "strengths"):
        v = rec.get(name)
        if v is not None and not isinstance(v, list):
            return f"{name} is not a list"
    for j in rec.get("judgments") or ():
        if not isinstance(j, dict) or not isinstance(j.get("key_point"), str) or j.get("status") not in _STATUSES:
            return "a judgment is not {key_point, status}"
        if not isinstance(j.get("evidence") or "", str):
            return "a judgment's evidence is not text"
    for m in rec.get("misconceptions") or ():
        if not isinstance(m, dict) or _opt_str(m, "id", "claim"):
            return "a misconception is not {id, claim}"
    for name in ("improvements", "strengths"):
        if any(not isinstance(x, str) for x in rec.get(name) or ()):
            return f"{name} holds something other than text"
    review = rec.get("review")
    if review is not None:
        if not isinstance(review, dict):
            return f"review is not an object ({type(review).__name__})"
        if not isinstance(review.get("needed", False), bool):
            return "review.needed is not true/false"
        reasons = review.get("reasons")
        if reasons is not None and (not isinstance(reasons, list) or any(not isinstance(r, str) for r in reasons)):
            return "review.reasons is not a list of text"
    return None


@dataclass
class Problems:
    """Corrupt lines met while reading one results file: a count and the first few as `FILE:LINE: reason`."""

    path: Path
    count: int = 0
    shown: list[str] = field(default_factory=list)
    _seen: set[int] = field(default_factory=set)  # line numbers already counted (a file is read more than once)

    def add(self, lineno: int, reason: str) -> None:
        if lineno in self._seen:
            return
        self._seen.add(lineno)
        self.count += 1
        if len(self.shown) < MAX_SHOWN_PROBLEMS:
            self.shown.append(f"{self.path}:{lineno}: {reason}")

    def lines(self) -> list[str]:
        """The warning lines to print: the first few, then how many more."""
        more = self.count - len(self.shown)
        return self.shown + ([f"{self.path}: … and {more:,} more corrupt line(s) left out"] if more > 0 else [])


def parse_line(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None) for a valid result line, (None, reason) otherwise."""
    rec, why = read_result_line(line)
    if rec is not None:
        why = _field_problem(rec)
    return (rec, None) if why is None else (None, why)


def needs_review(rec: dict[str, Any]) -> bool:
    """A graded line whose review flags say a person should check it (older lines have none)."""
    review = rec.get("review")
    return rec.get("outcome") == "graded" and isinstance(review, dict) and bool(review.get("needed"))


def _all_records(path: Path, problems: Problems | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    offset = 0
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            start, offset = offset, offset + len(line)
            if not line.endswith(b"\n") or not line.strip():
                continue
            rec, why = parse_line(line)
            if rec is not None:
                yield start, rec
            elif problems is not None:
                problems.add(lineno, why or "unreadable")


_ID_PREFIX = re.compile(rb'^\{"id":\s*("(?:[^"\\]|\\.)*")')
_BLOOM_BITS = 1 << 23  # 1 MiB: ~1 % false candidates at 100k ids, each settled exactly in a second pass


def _line_ids(path: Path, candidates: set[int] | None = None) -> Iterator[tuple[int, int]]:
    """(byte offset, id hash) of every complete result line, reading the id without parsing the
    whole line where it comes first (as mlgrade writes it). Lines whose id is in `candidates`
    are parsed and checked in full, so a corrupt line never hides a valid older one."""
    offset = 0
    with path.open("rb") as fh:
        for line in fh:
            start, offset = offset, offset + len(line)
            if not line.endswith(b"\n") or not line.strip():
                continue
            m = _ID_PREFIX.match(line)
            try:
                if m is not None and b'"outcome"' in line:
                    key = id_key(str(json.loads(m.group(1))))
                    if candidates is None:
                        yield start, key
                        continue
                    if key not in candidates:
                        continue
                rec, _ = parse_line(line)
            except (ValueError, RecursionError):
                continue
            if rec is not None:
                yield start, id_key(rec["id"])


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
    for off, key in _line_ids(path, candidates):
        if key in candidates:
            seen[key] = seen.get(key, 0) + 1
            last[key] = off
    dups = {k: last[k] for k, n in seen.items() if n > 1}
    return dups, sum(n - 1 for n in seen.values() if n > 1)


def replaced(path: Path, dups: dict[int, int]) -> int:
    """Of the older results `superseded` hides, how many a later run replaced on purpose: the newer
    line is the first for its id graded on that answer and rubric version (a changed answer,
    --regrade-stale), or follows a skipped or failed result with a new outcome (a fixed input, a
    retry). The others repeat a result already there (two results files joined, say): those are
    the duplicates worth a warning. Only the lines of ids in `dups` are parsed."""
    if not dups:
        return 0
    pairs: dict[int, set[int]] = {}  # id -> hashes of the (answer, rubric) its lines were graded on
    states: dict[int, set[int]] = {}  # id -> hashes of the (outcome, answer, rubric) of its lines
    last: dict[int, str] = {}  # id -> outcome of its latest line so far
    count = 0
    with path.open("rb") as fh:
        for line in fh:
            if not line.endswith(b"\n") or not line.strip():
                continue
            m = _ID_PREFIX.match(line)
            try:
                if m is not None and id_key(str(json.loads(m.group(1)))) not in dups:
                    continue
            except (ValueError, RecursionError):
                continue
            rec, _ = parse_line(line)
            if rec is None or (key := id_key(rec["id"])) not in dups:
                continue
            pair = hash((rec.get("answer_sha"), rec.get("rubric_hash")))
            state = hash((rec["outcome"], pair))
            if key in last:
                count += pair not in pairs[key] or (last[key] != "graded" and state not in states[key])
            pairs.setdefault(key, set()).add(pair)
            states.setdefault(key, set()).add(state)
            last[key] = rec["outcome"]
    return count


def iter_records(path: Path, dups: dict[int, int] | None = None,
                 problems: Problems | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(byte offset, record) of the last valid result per id, in file order; a partial last line
    is ignored, and so is an older result for an id that appears again later. Corrupt lines are
    left out and told to `problems`."""
    if dups is None:
        dups, _ = superseded(path)
    for off, rec in _all_records(path, problems):
        if dups:
            last = dups.get(id_key(rec["id"]))
            if last is not None and last != off:
                continue
        yield off, rec


INPUT_SUFFIXES = (".csv", ".tsv", ".yaml", ".yml", ".xlsx", ".md", ".txt")


def _looks_like_answers(path: Path) -> bool:
    """An answers file given where results were expected: a table or YAML by its name, or JSON
    lines whose first object has an answer and no outcome."""
    if path.suffix.lower() in INPUT_SUFFIXES:
        return True
    try:
        with path.open("rb") as fh:
            for raw in fh:
                if raw.strip():
                    rec = json.loads(raw)
                    return isinstance(rec, dict) and "answer" in rec and "outcome" not in rec
    except (OSError, ValueError):
        return False
    return False


def check_results_file(path: Path) -> None:
    """Refuse, in one line, a file that holds no results: missing, empty, or an input file
    (answers to grade) named by mistake, before any per-line warning about it."""
    from ..errors import UsageError

    if not path.is_file():
        raise UsageError(f"{path}: no such results file")
    if next(iter_records(path), None) is not None:
        return
    if _looks_like_answers(path):
        raise UsageError(f"{path} is an input file (answers to grade), not a results file: grade it with "
                         f"`mlgrade batch {path} --out results.jsonl`, then report on results.jsonl")
    raise UsageError(f"{path}: no results in it (expected JSON lines written by `mlgrade batch`)")

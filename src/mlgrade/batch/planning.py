"""Planning a batch run: the inputs read once against what the results file already holds
(resume), the items to grade spooled per question, and the --dry-run estimate."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .inputs import iter_items
from .items import BatchItem, iter_rows
from .output import SKIPPED, UNKNOWN, Recovery, answer_digest, id_key
from .progress import MAX_REPORTED_SKIPS, BatchSummary, RunRecorder
from ..config import Settings
from ..errors import quote_name
from ..grading import skip_reason, skipped_grade
from ..models import Usage
from ..rubrics import RubricBank

class Spool:
    """Items to grade, one temporary JSONL file per question, read back in question order.
    `when_size`: (n, callback), called once as the n-th item is spooled."""

    def __init__(self, *, when_size: tuple[int, Callable[[], None]] | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="mlgrade-batch-")
        self._files: dict[str, Any] = {}
        self.counts: Counter[str] = Counter()
        self.chars: Counter[str] = Counter()
        self.size = 0
        self._when_size = when_size

    def add(self, item: BatchItem) -> None:
        fh = self._files.get(item.question_id)
        if fh is None:
            fh = self._files[item.question_id] = open(Path(self._dir.name) / f"{len(self._files)}.jsonl", "w+",
                                                      encoding="utf-8", errors="surrogatepass")
        fh.write(json.dumps([item.id, item.answer, item.candidate, item.source]) + "\n")
        self.counts[item.question_id] += 1
        self.chars[item.question_id] += len(item.answer)
        self.size += 1
        if self._when_size is not None and self.size >= self._when_size[0]:
            callback, self._when_size = self._when_size[1], None
            callback()

    def read(self, qid: str) -> Iterator[BatchItem]:
        fh = self._files.get(qid)
        if fh is None:
            return
        fh.flush()
        fh.seek(0)
        for line in fh:
            item_id, answer, candidate, source = json.loads(line)
            yield BatchItem(id=item_id, question_id=qid, answer=answer, source=source, candidate=candidate)

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._dir.cleanup()


def input_items(inputs: Iterable[Any], bank: RubricBank, wide: Any = None) -> Iterator[BatchItem]:
    """Paths are read by format; mappings (Python callers) are taken as rows."""
    inputs = list(inputs) if not isinstance(inputs, (str, Path)) else [inputs]
    rows = [x for x in inputs if isinstance(x, Mapping)]
    paths = [x for x in inputs if not isinstance(x, Mapping)]
    if paths:
        yield from iter_items(paths, bank, wide)
    if rows:
        yield from iter_rows(rows, bank)


def estimate(spool: Spool, bank: RubricBank, settings: Settings, grader_kind: str) -> dict[str, Any]:
    """Rough token and cost estimate for --dry-run (pricing.grading_tokens)."""
    from ..pricing import estimate_cost, grading_tokens

    input_tokens = output_tokens = 0
    for qid, n in spool.counts.items():
        tokens = grading_tokens(bank.get(qid), n, spool.chars[qid])
        input_tokens += tokens.input_tokens
        output_tokens += tokens.output_tokens
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    llm = grader_kind == "llm"
    return {"items": sum(spool.counts.values()), "grader": grader_kind, "model": settings.model if llm else "",
            "input_tokens": input_tokens if llm else 0, "output_tokens": output_tokens if llm else 0,
            "cost_usd": estimate_cost(settings.model, usage) if llm else 0.0,
            "cost_usd_batch_api": estimate_cost(settings.model, usage, batch=True) if llm else 0.0,
            "per_question": dict(spool.counts)}


def plan(first: BatchItem | None, items: Iterator[BatchItem], rec: Recovery, run: RunRecorder, spool: Spool,
          summary: BatchSummary, bank: RubricBank, settings: Settings, dry_run: bool, regrade_stale: bool) -> None:
    """Stream the inputs once against what `out` already holds: bad rows are written now, ids
    to (re)grade spooled by question, finished ones passed over."""
    summary.already_done = len(rec.done)
    summary.recovery = {"truncated_bytes": rec.truncated_bytes, "dropped_errors": rec.dropped_errors,
                        "corrupt_lines": rec.corrupt_lines, "dropped_duplicates": rec.dropped_duplicates,
                        "dropped_lines": rec.dropped if rec.backup or dry_run else 0, "backup": rec.backup}
    summary.corrupt = rec.problems.lines() if rec.problems is not None else []
    summary.stale_rubric = len(rec.stale)
    seen: set[int] = set()
    for item in _chain(first, items) if first is not None else ():
        summary.inputs += 1
        key = id_key(item.id)
        if key in seen:
            item = BatchItem(id=f"{item.id}@{item.source}", question_id=item.question_id, answer="",
                             source=item.source, candidate=item.candidate,
                             skip_reason=f"duplicate id {quote_name(item.id)} (it appears earlier in the inputs)")
            key = id_key(item.id)
        seen.add(key)
        reason = item.skip_reason or skip_reason(item.answer, settings)
        before = rec.done.get(key)
        if before is not None:
            if before == SKIPPED and reason is None:
                summary.regraded_skipped += 1  # the input was fixed: grade it now
            elif before not in (SKIPPED, UNKNOWN) and reason is None and before != _digest_of(item.answer):
                summary.regraded_changed += 1  # the answer changed under the same id
            elif regrade_stale and key in rec.stale and reason is None:
                summary.regraded_stale += 1
            else:
                continue
        if reason is not None:
            summary.run.total += 1
            rubric = bank.rubrics.get(item.question_id)
            if not dry_run:
                run.record(item, skipped_grade(item.question_id, reason, rubric=rubric))
            elif len(summary.skipped_examples) < MAX_REPORTED_SKIPS:
                summary.skipped_examples.append(f"{item.source}: {reason}")
            continue
        spool.add(item)
    del seen
    summary.run.total += sum(spool.counts.values())


def _digest_of(answer: str) -> int:
    return int(answer_digest(answer), 16) or 1  # as output.Recovery.done stores it


def _chain(first: BatchItem, rest: Iterator[BatchItem]) -> Iterator[BatchItem]:
    yield first
    yield from rest

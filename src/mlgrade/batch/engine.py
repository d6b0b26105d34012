"""Grade many answers: bounded, rate-limit-aware concurrency, resumable output, response cache.

`grade_many(inputs, out)` streams the inputs (batch_inputs), skips ids already finished in
`out` (batch_output), spools the rest per question to a temporary folder so work goes out
question by question (identical prompt prefixes together, which providers' prompt caches
reward), and grades with at most `concurrency` requests in flight. On a 429 the limit is
halved and new requests pause for Retry-After; each success adds back 1/limit (AIMD).
Results are appended and flushed one line at a time. Memory stays flat: nothing holds all
items or all results.

The steps live beside it: planning.py (inputs against the results file, the spool, the
--dry-run estimate), runner.py (grading the spool), progress.py (counters and the summary).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .items import BatchItem
from .limiter import AdaptiveLimiter
from .output import OutputWriter, Recovery, open_results
from .planning import Spool, estimate, input_items, plan
from .progress import BatchProgress, BatchSummary, RunRecorder
from .runner import grade_spool, worker_start
from ..config import Settings, load_settings
from ..errors import UsageError
from ..grading import Grader
from ..rubrics import RubricBank, load_rubrics, rubric_hash

DEFAULT_CONCURRENCY = 8


async def agrade_many(inputs: Iterable[Any], out: str | Path, *, settings: Settings | None = None,
                      grader: Grader | None = None, bank: RubricBank | None = None,
                      concurrency: int = DEFAULT_CONCURRENCY, retry_errors: bool = False, use_cache: bool = True,
                      dry_run: bool = False, progress: Callable[[BatchProgress], None] | None = None,
                      store: Any = None, wide: Any = None, regrade_stale: bool = False) -> BatchSummary:
    """Grade every answer in `inputs` into the JSONL file `out` (resuming it if it exists).
    `wide`: a batch.wide.WideOptions for form/quiz exports (column mapping, candidate column).

    On a rerun an id already in `out` is graded again (a new line; the last line per id counts)
    when its input's answer differs from the one stored, or when it was skipped and the input
    now has a gradable answer; with `regrade_stale` also when it was graded on an older rubric."""
    from .aggregate import aggregate_file

    if concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1 (got {concurrency})")
    settings = settings or load_settings()
    bank = bank or load_rubrics(settings.rubrics_dir)
    out = Path(out)
    started = time.monotonic()
    summary = BatchSummary(out=str(out), dry_run=dry_run)
    items = input_items(inputs, bank, wide)  # validates paths lazily: pull the first item before touching `out`
    first = next(items, None)
    limiter = AdaptiveLimiter(concurrency)
    spool = Spool(when_size=worker_start(grader, settings, dry_run))
    try:
        # `out` is checked (directory, device, read-only, full disk, not ours), locked against a
        # second run and recovered before any grading; the lock is held until the last line is written
        hashes = {r.id: rubric_hash(r) for r in bank}
        with open_results(out, retry_errors=retry_errors, dry_run=dry_run, rubric_hashes=hashes) as (rec, writer):
            await _plan_and_grade(first, items, rec, writer, spool, limiter, summary, bank, settings, grader,
                                  store, use_cache, dry_run, progress, regrade_stale)
    finally:
        spool.close()
        summary.min_concurrency = int(limiter.min_limit)
        summary.peak_in_flight = limiter.peak_in_flight
        summary.run.finished = time.monotonic()
        summary.wall_s = round(summary.run.finished - started, 3)
    if dry_run:
        return summary
    summary.results = aggregate_file(out) if out.exists() else None
    if summary.results is not None and summary.results.problems.count and not summary.corrupt:
        summary.corrupt = summary.results.problems.lines()
    return summary


def results_in(out: str | Path) -> int:
    """How many complete result lines the output file holds (what an interrupted run kept)."""
    path = Path(out)
    if not path.exists():
        return 0
    count = 0
    with path.open("rb") as fh:
        for line in fh:
            if line.endswith(b"\n") and line.strip():
                count += 1
    return count


async def _plan_and_grade(first: BatchItem | None, items: Iterator[BatchItem], rec: Recovery,
                          writer: OutputWriter | None, spool: Spool, limiter: AdaptiveLimiter, summary: BatchSummary,
                          bank: RubricBank, settings: Settings, grader: Grader | None, store: Any, use_cache: bool,
                          dry_run: bool, progress: Callable[[BatchProgress], None] | None,
                          regrade_stale: bool = False) -> None:
    run = RunRecorder(writer, summary.run, limiter, progress, summary)
    plan(first, items, rec, run, spool, summary, bank, settings, dry_run, regrade_stale)
    kind = getattr(grader, "name", None) or settings.grader_kind
    if dry_run:
        summary.estimate = estimate(spool, bank, settings, "llm" if kind == "llm" else kind)
        return
    await grade_spool(spool, run, limiter, summary, bank, settings, grader, store, use_cache)


def grade_many(inputs: Iterable[Any], out: str | Path, **kwargs: Any) -> BatchSummary:
    """Grade every answer in the inputs (paths to .jsonl/.csv/.yaml files or answer folders, or
    dict rows) into `out`, one JSON line per answer; rerunning resumes. See `agrade_many`.

    >>> from mlgrade import grade_many
    >>> s = grade_many(["answers.jsonl"], "results.jsonl", concurrency=8)  # doctest: +SKIP
    >>> s.exit_code, s.results.outcomes  # doctest: +SKIP
    """
    return asyncio.run(agrade_many(inputs, out, **kwargs))

"""Grade many answers: bounded, rate-limit-aware concurrency, resumable output, response cache.

`grade_many(inputs, out)` streams the inputs (batch_inputs), skips ids already finished in
`out` (batch_output), spools the rest per question to a temporary folder so work goes out
question by question (identical prompt prefixes together, which providers' prompt caches
reward), and grades with at most `concurrency` requests in flight. On a 429 the limit is
halved and new requests pause for Retry-After; each success adds back 1/limit (AIMD).
Results are appended and flushed one line at a time. Memory stays flat: nothing holds all
items or all results.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .inputs import BatchItem, iter_items, iter_rows
from .limiter import AdaptiveLimiter
from .output import SKIPPED, UNKNOWN, OutputWriter, Recovery, answer_digest, id_key, open_results, result_record
from ..config import Settings, load_settings
from ..errors import ConfigError, GraderFailure, MlgradeError, UsageError
from ..grading import (Grader, agrade_rubric, error_grade, make_grader, second_opinion, skip_reason, skipped_grade,
                       with_review)
from ..models import Grade, Rubric, Usage
from ..rubrics import RubricBank, load_rubrics, rubric_hash

DEFAULT_CONCURRENCY = 8
MAX_REPORTED_SKIPS = 20


# --------------------------------------------------------------------------- progress & summary


@dataclass
class BatchProgress:
    total: int = 0  # items this run will grade or skip (not counting those already in the output)
    done: int = 0
    graded: int = 0
    errors: int = 0
    skipped: int = 0
    cache_hits: int = 0
    calls: int = 0
    in_flight: int = 0
    limit: int = 0
    rate_limits: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None  # set when the run ends: elapsed and rate stop moving

    @property
    def elapsed(self) -> float:
        return (self.finished if self.finished is not None else time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Answers written per second since the run started: the one rate the progress bar and
        the summary both show (cache hits and skipped rows count: they are written too)."""
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else 0.0


@dataclass
class BatchSummary:
    out: str
    inputs: int = 0  # items read from the inputs
    already_done: int = 0  # ids found finished in the output before this run
    run: BatchProgress = field(default_factory=BatchProgress)
    recovery: dict[str, Any] = field(default_factory=dict)
    corrupt: list[str] = field(default_factory=list)  # "file:line: reason" of lines left out, first few
    regraded_changed: int = 0  # results regraded because the input's answer differs from the stored one
    regraded_skipped: int = 0  # skipped results regraded because the input now has a gradable answer
    stale_rubric: int = 0  # results graded on an older version of their rubric (regraded with regrade_stale)
    regraded_stale: int = 0
    skipped_examples: list[str] = field(default_factory=list)  # "file:line: reason"
    min_concurrency: int = 0
    peak_in_flight: int = 0
    wall_s: float = 0.0
    dry_run: bool = False
    estimate: dict[str, Any] | None = None  # --dry-run: items, tokens, cost
    results: Any = None  # report.Aggregate of the whole output file after the run

    @property
    def exit_code(self) -> int:
        if self.dry_run:
            return 0
        outcomes = self.results.outcomes if self.results is not None else Counter()
        return 0 if outcomes.get("grader_error", 0) == 0 and outcomes.get("skipped", 0) == 0 else 1

    def to_dict(self) -> dict[str, Any]:
        run = {k: getattr(self.run, k) for k in ("total", "done", "graded", "errors", "skipped", "cache_hits", "calls",
                                                  "rate_limits", "cost_usd")}
        run["rate"] = round(self.run.rate, 3)
        run["usage"] = self.run.usage.model_dump()
        data = {k: getattr(self, k) for k in ("out", "inputs", "already_done", "recovery", "skipped_examples", "corrupt",
                                              "regraded_changed", "regraded_skipped", "stale_rubric", "regraded_stale",
                                              "min_concurrency", "peak_in_flight", "wall_s", "dry_run", "estimate")}
        data["run"] = run
        data["exit_code"] = self.exit_code
        if self.results is not None:
            data["results"] = self.results.to_dict()
        return data


# --------------------------------------------------------------------------- helpers


def cache_key(rubric: Rubric, prompt_hash: str, grader: Grader, answer: str) -> str:
    import hashlib

    parts = [rubric_hash(rubric), prompt_hash, getattr(grader, "name", ""), getattr(grader, "model", ""), answer]
    return "batch:" + hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def grader_prompt_hash(grader: Grader, rubric: Rubric) -> str:
    fn = getattr(grader, "prompt_hash", None)
    return str(fn(rubric)) if callable(fn) else ""


def build_grader(settings: Settings, *, store: Any = None, on_retry: Callable[[Any], None] | None = None,
                 kind: str | None = None) -> Grader:
    kind = kind or settings.grader_kind
    if kind == "llm":
        from ..graders.llm import LLMGrader

        return LLMGrader(settings, store=store, on_retry=on_retry)
    return make_grader(settings, kind)


class _FatalWatch:
    """Wraps a grader to notice a fatal failure (bad key, unknown model): no point grading on."""

    def __init__(self, inner: Grader):
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.fatal: GraderFailure | None = None

    async def assess(self, rubric, answer, *, facts=None):  # type: ignore[no-untyped-def]
        try:
            return await self.inner.assess(rubric, answer, facts=facts)
        except GraderFailure as exc:
            if exc.fatal and self.fatal is None:
                self.fatal = exc
            raise


class _Spool:
    """Items to grade, one temporary JSONL file per question, read back in question order."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="mlgrade-batch-")
        self._files: dict[str, Any] = {}
        self.counts: Counter[str] = Counter()
        self.chars: Counter[str] = Counter()

    def add(self, item: BatchItem) -> None:
        fh = self._files.get(item.question_id)
        if fh is None:
            fh = self._files[item.question_id] = open(Path(self._dir.name) / f"{len(self._files)}.jsonl", "w+",
                                                      encoding="utf-8", errors="surrogatepass")
        fh.write(json.dumps([item.id, item.answer, item.candidate, item.source]) + "\n")
        self.counts[item.question_id] += 1
        self.chars[item.question_id] += len(item.answer)

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


def _input_items(inputs: Iterable[Any], bank: RubricBank, wide: Any = None) -> Iterator[BatchItem]:
    """Paths are read by format; mappings (Python callers) are taken as rows."""
    inputs = list(inputs) if not isinstance(inputs, (str, Path)) else [inputs]
    rows = [x for x in inputs if isinstance(x, Mapping)]
    paths = [x for x in inputs if not isinstance(x, Mapping)]
    if paths:
        yield from iter_items(paths, bank, wide)
    if rows:
        yield from iter_rows(rows, bank)


def _estimate(spool: _Spool, bank: RubricBank, settings: Settings, grader_kind: str) -> dict[str, Any]:
    """Rough token and cost estimate for --dry-run: ~4 characters a token, ~60 output tokens a key point."""
    from ..pricing import estimate_cost

    input_tokens = output_tokens = 0
    for qid, n in spool.counts.items():
        rubric = bank.get(qid)
        prefix_chars = len(json.dumps(rubric.model_dump(mode="json"), ensure_ascii=False)) + 2500  # + system prompt
        input_tokens += (n * prefix_chars + spool.chars[qid]) // 4
        output_tokens += n * (120 + 60 * len(rubric.key_points))
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    llm = grader_kind == "llm"
    return {"items": sum(spool.counts.values()), "grader": grader_kind, "model": settings.model if llm else "",
            "input_tokens": input_tokens if llm else 0, "output_tokens": output_tokens if llm else 0,
            "cost_usd": estimate_cost(settings.model, usage) if llm else 0.0,
            "cost_usd_batch_api": estimate_cost(settings.model, usage, batch=True) if llm else 0.0,
            "per_question": dict(spool.counts)}


# --------------------------------------------------------------------------- the engine


@dataclass
class _Run:
    writer: OutputWriter | None
    progress: BatchProgress
    limiter: AdaptiveLimiter
    on_progress: Callable[[BatchProgress], None] | None
    summary: BatchSummary

    def record(self, item: BatchItem, grade: Grade, *, cached: bool = False) -> None:
        p = self.progress
        if self.writer is not None:
            self.writer.write(result_record(item.id, grade.model_dump(mode="json"), candidate=item.candidate,
                                            source=item.source, cached=cached, answer=item.answer))
        p.done += 1
        if grade.outcome == "graded":
            p.graded += 1
        elif grade.outcome == "grader_error":
            p.errors += 1
        else:
            p.skipped += 1
            if len(self.summary.skipped_examples) < MAX_REPORTED_SKIPS:
                self.summary.skipped_examples.append(f"{item.source}: {grade.error}")
        if cached:
            p.cache_hits += 1
        else:
            p.usage = p.usage + grade.usage
            p.cost_usd = round(p.cost_usd + (grade.cost_usd or 0.0), 8)
        self.tick()

    def tick(self) -> None:
        self.progress.in_flight = self.limiter.in_flight
        self.progress.limit = int(self.limiter.limit)
        self.progress.rate_limits = self.limiter.rate_limits
        if self.on_progress is not None:
            self.on_progress(self.progress)


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
    from .report import aggregate_file

    if concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1 (got {concurrency})")
    settings = settings or load_settings()
    bank = bank or load_rubrics(settings.rubrics_dir)
    out = Path(out)
    started = time.monotonic()
    summary = BatchSummary(out=str(out), dry_run=dry_run)
    items = _input_items(inputs, bank, wide)  # validates paths lazily: pull the first item before touching `out`
    first = next(items, None)
    limiter = AdaptiveLimiter(concurrency)
    spool = _Spool()
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
                          writer: OutputWriter | None, spool: _Spool, limiter: AdaptiveLimiter, summary: BatchSummary,
                          bank: RubricBank, settings: Settings, grader: Grader | None, store: Any, use_cache: bool,
                          dry_run: bool, progress: Callable[[BatchProgress], None] | None,
                          regrade_stale: bool = False) -> None:
    run = _Run(writer, summary.run, limiter, progress, summary)
    _plan(first, items, rec, run, spool, summary, bank, settings, dry_run, regrade_stale)
    kind = getattr(grader, "name", None) or settings.grader_kind
    if dry_run:
        summary.estimate = _estimate(spool, bank, settings, "llm" if kind == "llm" else kind)
        return
    await _grade(spool, run, limiter, summary, bank, settings, grader, store, use_cache)


def _plan(first: BatchItem | None, items: Iterator[BatchItem], rec: Recovery, run: _Run, spool: _Spool,
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
                             skip_reason=f"duplicate id {item.id!r} (it appears earlier in the inputs)")
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


async def _grade(spool: _Spool, run: _Run, limiter: AdaptiveLimiter, summary: BatchSummary, bank: RubricBank,
                 settings: Settings, grader: Grader | None, store: Any, use_cache: bool) -> None:
    """Grade the spooled items question by question; stop the run on a fatal grader failure."""
    run.tick()
    watched = _FatalWatch(grader or build_grader(settings, store=store, on_retry=_retry_hook(limiter, run)))
    if grader is not None and (hasattr(grader, "on_retry") or hasattr(grader, "endpoint")):
        _chain_retry_hook(grader, limiter, run)
    cache = None
    if use_cache:
        from ..store import Store

        cache = store or Store.for_settings(settings)
    try:
        await _grade_spooled(spool, bank, settings, watched, cache, limiter, run)
    finally:
        if grader is None and hasattr(watched.inner, "aclose"):
            await watched.inner.aclose()  # close the HTTP client on the loop that made it
    if watched.fatal is not None:
        left = summary.run.total - summary.run.done
        raise MlgradeError(f"batch stopped: {watched.fatal.reason} ({left:,} answers not graded; "
                           "fix the configuration and rerun the same command to resume)")


def _digest_of(answer: str) -> int:
    return int(answer_digest(answer), 16) or 1  # as output.Recovery.done stores it


def _chain(first: BatchItem, rest: Iterator[BatchItem]) -> Iterator[BatchItem]:
    yield first
    yield from rest


def _retry_hook(limiter: AdaptiveLimiter, run: _Run) -> Callable[[Any], None]:
    def on_retry(event: Any) -> None:
        if getattr(event, "kind", "") == "rate_limit":
            limiter.on_rate_limit(getattr(event, "wait_s", None))
            run.tick()

    return on_retry


def _chain_retry_hook(grader: Any, limiter: AdaptiveLimiter, run: _Run) -> None:
    """A grader handed in by the caller: keep its own on_retry and add ours. (LLMGrader keeps
    the hook on its endpoint; simpler graders on themselves.)"""
    holder = grader.endpoint if hasattr(getattr(grader, "endpoint", None), "on_retry") else grader
    theirs = holder.on_retry
    ours = _retry_hook(limiter, run)

    def both(event: Any) -> None:
        ours(event)
        if theirs is not None:
            theirs(event)

    holder.on_retry = both


async def _grade_spooled(spool: _Spool, bank: RubricBank, settings: Settings, grader: _FatalWatch, cache: Any,
                         limiter: AdaptiveLimiter, run: _Run) -> None:
    tasks: set[asyncio.Task[None]] = set()
    crashed: list[BaseException] = []

    def finished(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            crashed.append(task.exception())  # type: ignore[arg-type]

    async def work(item: BatchItem, rubric: Rubric, key: str | None) -> None:
        run.progress.calls += 1
        try:
            grade = await agrade_rubric(rubric, item.answer, settings=settings, grader=grader)  # type: ignore[arg-type]
        except ConfigError:
            raise  # the data folder or the store is unusable: every answer would fail the same way
        except Exception as exc:  # a bug or an unwrapped error: one grader_error, not a dead batch
            grade = error_grade(rubric, GraderFailure(f"unexpected {type(exc).__name__}: {exc}"), grader=grader)  # type: ignore[arg-type]
        limiter.release(ok=grade.outcome == "graded")
        if grade.outcome == "grader_error" and grader.fatal is not None:
            return  # not written: a rerun resumes it once the configuration is fixed
        if key is not None and grade.outcome == "graded":
            cache.cache_put(key, grade.model_dump(mode="json"))
        run.record(item, grade)

    for rubric in bank:
        if not spool.counts.get(rubric.id):
            continue
        prompt_hash = grader_prompt_hash(grader.inner, rubric)
        for item in spool.read(rubric.id):
            if grader.fatal is not None:
                break
            key = cache_key(rubric, prompt_hash, grader, item.answer) if cache is not None else None
            raw = cache.cache_get(key) if key is not None else None
            hit = _cached_grade(raw)
            if hit is not None:
                if "review" not in raw:  # cached before review flags existed
                    second = second_opinion(rubric, item.answer, hit.code_tests) if hit.grader != "offline" else None
                    hit = with_review(hit, rubric, item.answer, second=second)
                run.record(item, hit, cached=True)
                continue
            await limiter.acquire()
            run.tick()
            task = asyncio.create_task(work(item, rubric, key))
            tasks.add(task)
            task.add_done_callback(finished)
            if crashed:
                raise crashed[0]
        if grader.fatal is not None:
            break
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    if crashed:
        raise crashed[0]


def _cached_grade(hit: dict[str, Any] | None) -> Grade | None:
    """A cached grade, or None (a miss) when the row is not a valid graded Grade: it is regraded
    and the row replaced."""
    if hit is None:
        return None
    try:
        grade = Grade.model_validate(hit)
    except ValueError:
        return None
    if grade.outcome != "graded":
        return None
    return grade.model_copy(update={"usage": Usage(), "latency_ms": 0,
                                    "cost_usd": 0.0 if hit.get("cost_usd") is not None else None})


def grade_many(inputs: Iterable[Any], out: str | Path, **kwargs: Any) -> BatchSummary:
    """Grade every answer in the inputs (paths to .jsonl/.csv/.yaml files or answer folders, or
    dict rows) into `out`, one JSON line per answer; rerunning resumes. See `agrade_many`.

    >>> from mlgrade import grade_many
    >>> s = grade_many(["answers.jsonl"], "results.jsonl", concurrency=8)  # doctest: +SKIP
    >>> s.exit_code, s.results.outcomes  # doctest: +SKIP
    """
    return asyncio.run(agrade_many(inputs, out, **kwargs))

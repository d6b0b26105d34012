"""Running a batch: the spooled items graded question by question with at most `limit`
requests in flight (AdaptiveLimiter: halved on a 429, +1/limit per success), the response
cache consulted first, and the run stopped on a fatal grader failure."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .items import BatchItem
from .limiter import AdaptiveLimiter
from .planning import Spool
from .progress import BatchSummary, RunRecorder
from ..config import Settings
from ..errors import ConfigError, GraderFailure, MlgradeError
from ..grading import (UNSET, Grader, agrade_rubric, code_facts, error_grade, make_grader, runs_code, second_opinion,
                       skip_reason, with_review)
from ..models import CodeTestResult, Grade, Rubric, Usage
from ..review import not_verified_reason
from ..rubrics import RubricBank, rubric_hash

if TYPE_CHECKING:
    from .opinions import SecondOpinions

MAX_REMEMBERED_HITS = 256  # cached grades kept in memory per run: a few MB, so a long run stays flat
WAITING_ROOM = 256  # answers whose reply is in that may wait for finalizing beyond the in-flight ones


def cache_key(rubric: Rubric, prompt_hash: str, grader: Grader, answer: str, *, runs_code: bool = True,
              endpoint: str = "") -> str:
    """The key of a cached grade. A coding question's grade differs when its code is not run
    (MLGRADE_EXEC=0), so that is part of the key; so is the endpoint (`grader_endpoint`): two
    servers that serve the same model name are two graders."""
    import hashlib

    parts = [rubric_hash(rubric), prompt_hash, getattr(grader, "name", ""), getattr(grader, "model", ""), answer]
    if rubric.tests and not runs_code:
        parts.append("code-not-run")
    if endpoint:  # absent for the default endpoint and the offline grader: their older keys stay valid
        parts.append("endpoint:" + endpoint)
    return "batch:" + hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def grader_endpoint(grader: Grader) -> str:
    """The grader's base URL without credentials or token parameters (redact_url), or "" for a
    grader with none (offline, the default OpenAI endpoint)."""
    from ..errors import redact_url

    return redact_url(getattr(getattr(grader, "settings", None), "base_url", None) or "") or ""


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
        if self.fatal is not None:  # an answer that waited for a slot while another one failed fatally
            raise GraderFailure(self.fatal.reason, fatal=True)
        try:
            return await self.inner.assess(rubric, answer, facts=facts)
        except GraderFailure as exc:
            if exc.fatal and self.fatal is None:
                self.fatal = exc
            raise


async def grade_spool(spool: Spool, run: RunRecorder, limiter: AdaptiveLimiter, summary: BatchSummary,
                      bank: RubricBank, settings: Settings, grader: Grader | None, store: Any, use_cache: bool) -> None:
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


def _retry_hook(limiter: AdaptiveLimiter, run: RunRecorder) -> Callable[[Any], None]:
    def on_retry(event: Any) -> None:
        if getattr(event, "kind", "") == "rate_limit":
            limiter.on_rate_limit(getattr(event, "wait_s", None))
            run.tick()

    return on_retry


def _chain_retry_hook(grader: Any, limiter: AdaptiveLimiter, run: RunRecorder) -> None:
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


class _Finalizer:
    """Where grades are finalized when the offline second opinion is still to be computed in this
    process (a grader other than the LLM, a batch too small for the worker process of
    batch.opinions, or that worker gone): one worker thread for a grader that waits on the network.
    On the event loop a wave of replies queued each next request behind every earlier reply's
    finalize; in the thread the loop gets the GIL back within the switch interval (5 ms). One
    thread, so grades are computed one at a time as before. The offline grader's own work is all
    CPU on the loop: there a thread would only add hand-offs. With the second opinion computed by
    the worker, what is left of finalize (~0.3 ms) runs on the loop (_Pace.run)."""

    def __init__(self, offload: bool):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlgrade-finalize") if offload else None

    def ahead(self, work: Callable[..., Any], *args: Any) -> None:
        """Start `work` in the worker thread without waiting for it (nothing, with no thread)."""
        if self._pool is not None:
            self._pool.submit(work, *args)

    async def __call__(self, work: Callable[[], Grade]) -> Grade:
        if self._pool is None:
            return work()
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


class _Pace:
    """One answer's grading.Pacing: its request slot is given back as soon as the grader has
    answered, not after the grade is finalized. `held`: the slot was taken before the answer
    started (the answer's code, when it has some to run, runs first and without one)."""

    def __init__(self, limiter: AdaptiveLimiter, finalizer: _Finalizer, run: RunRecorder, *, held: bool,
                 opinions: SecondOpinions | None = None):
        self.limiter = limiter
        self.finalizer = finalizer
        self.recorder = run
        self.held = held
        self.opinions = opinions
        self.opinion: Any = UNSET
        self.second_known = False

    async def code_facts(self, rubric: Rubric, answer: str, settings: Settings) -> list[CodeTestResult]:
        """The results of running the answer's code: run by the worker process when the batch has
        one (batch.opinions), else (or when it could not) by a thread of this process."""
        if self.opinions is not None:
            facts = await self.opinions.code_facts(rubric, answer, settings.sandbox)
            if facts is not UNSET:
                return facts  # type: ignore[no-any-return]
        return await code_facts(rubric, answer, settings, background=True)

    def start_second_opinion(self, rubric: Rubric, answer: str, code_tests: list[CodeTestResult] | None) -> None:
        """Start the answer's second opinion in the worker process, beside its request."""
        if self.opinions is not None:
            self.opinion = self.opinions.start(rubric, answer, code_tests)

    async def second_opinion(self) -> Any:
        second = await self.opinions.result(self.opinion) if self.opinions is not None else UNSET
        self.second_known = second is not UNSET
        return second

    async def before_ask(self) -> None:
        if not self.held:
            await self.limiter.acquire()
            self.held = True
            self.recorder.tick()

    def answered(self, *, ok: bool) -> None:
        if self.held:
            self.held = False
            self.limiter.release(ok=ok)

    async def run(self, work: Callable[[], Grade]) -> Grade:
        return await self.finalizer(work)


async def _grade_spooled(spool: Spool, bank: RubricBank, settings: Settings, grader: _FatalWatch, cache: Any,
                         limiter: AdaptiveLimiter, run: RunRecorder) -> None:
    tasks: set[asyncio.Task[None]] = set()
    crashed: list[BaseException] = []
    # The same answer to the same question again in this run (a form submitted twice, files
    # joined) is read from the store and validated once: its key names the answer, the rubric and
    # the grader, so the grade is the same one.
    hits: dict[str, Grade] = {}
    finalizer = _Finalizer(offload=grader.name != "offline")
    prepare = getattr(grader.inner, "prepare", None)  # a question's reply schema, built before its first request
    # Answers started and not yet written: a request slot is freed when the reply is in, before its
    # grade is finalized, so this bounds what waits for finalizing (memory stays flat). In an LLM
    # batch that is mostly the second opinion from the worker process (batch.opinions), which starts
    # cold and, on a busy machine, answers its first opinions seconds after the first replies: a bound
    # of two waves then stopped every request until it caught up (issue 22). WAITING_ROOM answers more
    # may wait, a constant (at most max_answer_chars each).
    started = asyncio.Semaphore(2 * limiter.maximum + WAITING_ROOM)
    # Answers whose code runs in the sandbox first (about 0.2 s of CPU each, in hosts forked warm:
    # code.hosts) have a lane of their own, started with the
    # run, so their sandbox time overlaps the other questions' requests instead of holding request
    # slots (at the end of the run, where bank order put them).
    coding = asyncio.Semaphore(limiter.maximum)
    sandboxes = asyncio.Semaphore(max(1, os.cpu_count() or 1))  # code runs at a time: one per core

    def finished(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            crashed.append(task.exception())  # type: ignore[arg-type]

    async def work(item: BatchItem, rubric: Rubric, key: str | None, pace: _Pace, bound: asyncio.Semaphore) -> None:
        try:
            run.progress.calls += 1
            try:
                facts = None
                if not pace.held and runs_code(rubric, settings):
                    async with sandboxes:
                        facts = await pace.code_facts(rubric, item.answer, settings)
                if not skip_reason(item.answer, settings):
                    pace.start_second_opinion(rubric, item.answer, facts)
                grade = await agrade_rubric(rubric, item.answer, settings=settings, grader=grader, pace=pace,  # type: ignore[arg-type]
                                            facts=facts)
            except ConfigError:
                raise  # the data folder or the store is unusable: every answer would fail the same way
            except Exception as exc:  # a bug or an unwrapped error: one grader_error, not a dead batch
                grade = error_grade(rubric, GraderFailure(f"unexpected {type(exc).__name__}: {exc}"), grader=grader)  # type: ignore[arg-type]
            if grade.outcome == "grader_error" and grader.fatal is not None:
                return  # not written: a rerun resumes it once the configuration is fixed
            if key is not None and grade.outcome == "graded" and not _code_unverified(grade):
                cache.cache_put(key, grade.model_dump(mode="json"))
            run.record(item, grade)
        finally:
            pace.answered(ok=False)  # a no-op unless the grader was never asked (the slot goes back all the same)
            bound.release()

    endpoint = grader_endpoint(grader.inner)

    async def feed(rubrics: list[Rubric], runs_code: bool) -> None:
        bound = coding if runs_code else started
        rubrics = [r for r in rubrics if spool.counts.get(r.id)]
        if callable(prepare) and rubrics:
            prepare(rubrics[0])  # wanted at once
        for k, rubric in enumerate(rubrics):
            if callable(prepare) and k + 1 < len(rubrics):
                # the next question's, in the thread while this one's requests go out: all of them
                # at the start (~4 ms each) took the GIL from the first wave of requests
                finalizer.ahead(prepare, rubrics[k + 1])
            prompt_hash = grader_prompt_hash(grader.inner, rubric)
            for item in spool.read(rubric.id):
                if grader.fatal is not None:
                    return
                key = cache_key(rubric, prompt_hash, grader, item.answer, runs_code=settings.exec_code,
                                endpoint=endpoint) if cache is not None else None
                hit = hits.get(key) if key is not None else None
                if hit is None:
                    raw = cache.cache_get(key) if key is not None else None
                    hit = _cached_grade(raw)
                    if hit is not None:
                        if "review" not in raw:  # cached before review flags existed
                            second = second_opinion(rubric, item.answer, hit.code_tests) if hit.grader != "offline" else None
                            hit = with_review(hit, rubric, item.answer, second=second)
                        if len(hits) >= MAX_REMEMBERED_HITS:
                            hits.clear()  # items come question by question: the repeats worth keeping are recent
                        if MAX_REMEMBERED_HITS:
                            hits[key] = hit  # type: ignore[index]
                if hit is not None:
                    run.record(item, hit, cached=True)
                    continue
                await bound.acquire()
                if not runs_code:  # in spool order, so requests go out question by question
                    await limiter.acquire()
                    run.tick()
                task = asyncio.create_task(work(item, rubric, key, _Pace(limiter, finalizer, run, held=not runs_code,
                                                                          opinions=opinions),
                                                bound))
                tasks.add(task)
                task.add_done_callback(finished)
                if crashed:
                    raise crashed[0]
            if grader.fatal is not None:
                return

    code_lane = [r for r in bank if runs_code(r, settings)]
    opinions = _second_opinions(spool, bank, grader)  # let go of in the finally below, whatever happens
    coder = asyncio.create_task(feed(code_lane, True)) if code_lane else None
    try:
        await feed([r for r in bank if not runs_code(r, settings)], False)
        if coder is not None:
            await coder
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        if coder is not None and not coder.done():
            coder.cancel()
            await asyncio.gather(coder, return_exceptions=True)
        finalizer.close()
        if opinions is not None:
            await opinions.aclose()
        if coder is not None:
            from ..code.hosts import close_all

            close_all()  # the batch's warm sandbox hosts (code.hosts)
    if crashed:
        raise crashed[0]


def worker_start(grader: Grader | None, settings: Settings, dry_run: bool) -> tuple[int, Callable[[], None]] | None:
    """For Spool(when_size=…): start the second-opinion worker while the batch is planned, as soon
    as it holds enough answers for one (_second_opinions), so its start-up runs beside the planning.
    None when the batch will not use it (another grader, a dry run)."""
    if dry_run or (getattr(grader, "name", None) or settings.grader_kind) != "llm":
        return None
    from .opinions import MIN_ANSWERS, prestart

    return MIN_ANSWERS, prestart


def _second_opinions(spool: Spool, bank: RubricBank, grader: _FatalWatch) -> SecondOpinions | None:
    """A worker process for the second opinions of a batch of LLM grades big enough to pay for it
    (batch.opinions); None: finalize computes them in its thread."""
    from .opinions import MIN_ANSWERS, SecondOpinions

    if grader.name != "llm" or sum(spool.counts.values()) < MIN_ANSWERS:
        return None
    return SecondOpinions()


def _code_unverified(grade: Grade) -> bool:
    """The answer's code was not run or not checked (no sandbox here, the reference failed): that
    says something about this machine at that moment, not about the answer, so it is not cached.
    Code that needs a library the sandbox lacks (code/needs.py) is another matter: no sandbox of
    mlgrade's has it, so running again would only pay for the same request."""
    return any(t.status == "not-run" and not_verified_reason(t) is None for t in grade.code_tests)


def _cached_grade(hit: dict[str, Any] | None) -> Grade | None:
    """A cached grade, or None (a miss) when the row is not a valid graded Grade: it is regraded
    and the row replaced."""
    if hit is None:
        return None
    try:
        grade = Grade.model_validate(hit)
    except ValueError:
        return None
    if grade.outcome != "graded" or _code_unverified(grade):
        return None
    return grade.model_copy(update={"usage": Usage(), "latency_ms": 0,
                                    "cost_usd": 0.0 if hit.get("cost_usd") is not None else None})

"""Grade one answer: check the input, ask a grader for judgments, verify evidence, score in code.

Every grader (LLM, offline, or a fake in tests) implements `Grader.assess` and returns an
`Assessment`; this module turns it into a `Grade` the same way for all of them, so evidence
checks and arithmetic can never differ between graders.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Protocol

from .config import Settings, load_settings
from .errors import GraderFailure, UsageError, quote_name
from .evidence import quote_found, verify_judgments, verify_misconceptions
from .models import Assessment, CodeTestResult, Grade, Judgment, MisconceptionFound, Rubric, updated
from .pricing import estimate_cost
from .injection_scan import InjectionHit, find_injections, mask_injections
from .review import assess
from .rubrics import RubricBank, load_rubrics, rubric_hash
from .scoring import (ScoreBreakdown, band_for, code_core_passed, code_passed, compute_score, held_note,
                      misconception_penalty)


class Grader(Protocol):
    name: str  # "llm", "offline", "fake"…
    model: str

    async def assess(self, rubric: Rubric, answer: str, *, facts: list[CodeTestResult] | None = None) -> Assessment:
        """Judge the answer against the rubric; raise GraderFailure when no valid judgment came back."""
        ...


class Pacing(Protocol):
    """How a batch paces one answer's grading (batch.runner): a request slot is held only while
    the grader is asked, and the CPU-heavy checks after the reply run where the batch says, so
    they never keep the next request from going out (issue 22)."""

    async def before_ask(self) -> None:
        """Wait for a request slot (a no-op when the batch took one before starting the answer)."""

    def answered(self, *, ok: bool) -> None:
        """The grader has answered (or failed): give the slot back."""

    async def run(self, work: Callable[[], Grade]) -> Grade:
        """Run `work` (finalize: evidence, score, second opinion) and return its Grade."""
        ...

    # optional: `async def second_opinion(self) -> dict | None | UNSET`, the offline grader's
    # second opinion when the batch computed it while the grader was asked (UNSET: not computed)


def make_grader(settings: Settings, kind: str | None = None) -> Grader:
    kind = kind or settings.grader_kind
    if kind == "offline":
        from .graders.offline import OfflineGrader

        return OfflineGrader()
    if kind == "llm":
        from .graders.llm import LLMGrader

        return LLMGrader(settings)
    raise UsageError(f"unknown grader {quote_name(kind)}: choose auto, llm or offline")


class AnswerTooLong(UsageError):
    pass


def check_answer(answer: str, settings: Settings) -> str | None:
    """None when the answer can be graded, else the reason to skip it. Raises for oversize input."""
    if len(answer) > settings.max_answer_chars:
        raise AnswerTooLong(
            f"answer is {len(answer):,} characters, over the limit of {settings.max_answer_chars:,} "
            "(set MLGRADE_MAX_ANSWER_CHARS to change it)"
        )
    if not answer.strip():
        return "empty answer"
    return None


def skip_reason(answer: str, settings: Settings) -> str | None:
    """Why an answer in a batch cannot be graded (empty, or over the size limit), else None.
    Unlike check_answer this never raises: in a batch a bad answer is a skipped row, not a stop."""
    try:
        return check_answer(answer, settings)
    except AnswerTooLong as exc:
        return str(exc)


def _complete_judgments(rubric: Rubric, judgments: list[Judgment]) -> list[Judgment]:
    """One judgment per rubric key point, in rubric order; unknown ids dropped, absent ones missing."""
    by_id = {j.key_point: j for j in judgments}
    return [by_id.get(kp.id) or Judgment(key_point=kp.id, status="missing", comment="not judged by the grader")
            for kp in rubric.key_points]


def _discount_injected(judgments: list[Judgment], answer: str, hits: list[InjectionHit]) -> list[Judgment]:
    """A point whose quote occurs only inside text aimed at the grader earns nothing: such text
    can report itself, never raise the score."""
    masked = mask_injections(answer, hits)
    out = []
    for j in judgments:
        if j.status != "missing" and j.verified and j.evidence.strip() and not quote_found(j.evidence, masked):
            j = j.model_copy(update={"status": "missing", "verified": False,
                                     "comment": "evidence quoted from text aimed at the grader: not credited"})
        out.append(j)
    return out


_offline: Grader | None = None

UNSET = object()  # a second opinion not computed yet (None is one that could not be made)


def second_opinion(rubric: Rubric, answer: str, code_tests: list[CodeTestResult] | None = None) -> dict | None:
    """The offline grader's score and band for the same answer: the independent verdict behind the
    graders_disagree flag. None if it could not grade. Part of finalize; a batch of LLM grades
    computes it ahead in a worker process while the answer's request is in flight (batch.opinions,
    issue 22) and hands it to finalize."""
    global _offline
    from .graders.offline import OfflineGrader

    if _offline is None:
        _offline = OfflineGrader()
    try:
        assessment = _offline.judge(rubric, answer, facts=code_tests or None)  # type: ignore[attr-defined]
        # only the score is wanted: the arithmetic of finalize, without building a Grade and its flags
        *_, breakdown = _checked(rubric, answer, assessment, code_tests, grader="offline")
    except Exception:  # a second opinion that fails must never fail the grade it checks
        return None
    return {"grader": "offline", "score": breakdown.score, "band": breakdown.band}


def with_review(grade: Grade, rubric: Rubric, answer: str, *, second: dict | None = None) -> Grade:
    """The grade with its review flags (re)computed, e.g. after samples were combined."""
    return grade.model_copy(update={"review": assess(grade, answer, rubric=rubric, second_opinion=second)})


def _checked(rubric: Rubric, answer: str, assessment: Assessment, code_tests: list[CodeTestResult] | None, *,
             grader: str) -> tuple[list[InjectionHit], list[Judgment], list[MisconceptionFound], ScoreBreakdown]:
    """Evidence checked, code results applied, misconceptions verified and priced, score computed."""
    hits = find_injections(answer)
    judgments = verify_judgments(_complete_judgments(rubric, assessment.judgments), answer,
                                 require_quote=grader != "offline")
    if hits:
        judgments = _discount_injected(judgments, answer, hits)
    if code_tests:
        from .code.verdicts import apply_code_results

        judgments = apply_code_results(rubric, judgments, code_tests)
    found = verify_misconceptions(assessment.misconceptions, answer)
    found = [updated(m, claim=m.claim or (rubric.misconception(m.id).claim if rubric.misconception(m.id) else ""),
                     penalty=misconception_penalty(rubric, m)) for m in found]
    return hits, judgments, found, compute_score(rubric, judgments, found, code_passed=code_passed(code_tests),
                                                 code_core_passed=code_core_passed(code_tests))


def finalize(rubric: Rubric, answer: str, assessment: Assessment, *, grader: str, latency_ms: int = 0,
             code_tests: list[CodeTestResult] | None = None, second: dict | None | object = UNSET) -> Grade:
    """Turn a grader's assessment into a scored Grade: evidence checked, arithmetic ours, review
    flags set (with the offline grader's second opinion when another grader judged). `second`:
    that second opinion when the caller computed it already (batch.opinions)."""
    hits, judgments, found, breakdown = _checked(rubric, answer, assessment, code_tests, grader=grader)
    if code_tests and grader == "offline":
        # the offline grader's feedback is made from its judgments: remake it from the final ones,
        # or a point the tests just proved would still be listed under "To improve"
        from .graders.rubric_feedback import improvements_for, strengths_for

        assessment = assessment.model_copy(update={"strengths": strengths_for(rubric, judgments),
                                                   "improvements": improvements_for(rubric, judgments, found)})
    note = held_note(rubric, judgments, breakdown)
    if note:  # first: it says why following the other lines may not move the score yet
        assessment = assessment.model_copy(update={"improvements": [note, *assessment.improvements]})
    grade = Grade(
        question_id=rubric.id, outcome="graded", score=breakdown.score, band=breakdown.band,
        judgments=judgments, misconceptions=found, strengths=assessment.strengths,
        improvements=assessment.improvements, follow_up=assessment.follow_up, grader=grader,
        model=assessment.model, usage=assessment.usage, latency_ms=latency_ms,
        cost_usd=estimate_cost(assessment.model, assessment.usage) if grader == "llm" else 0.0,
        rubric_hash=rubric_hash(rubric), prompt_hash=assessment.prompt_hash, attempts=assessment.attempts,
        code_tests=code_tests or [],
    )
    if second is UNSET:
        second = second_opinion(rubric, answer, code_tests) if grader != "offline" else None
    return updated(grade, review=assess(grade, answer, rubric=rubric, second_opinion=second, injections=hits))


def error_grade(rubric: Rubric, failure: GraderFailure, *, grader: Grader, latency_ms: int = 0,
                code_tests: list[CodeTestResult] | None = None) -> Grade:
    return Grade(question_id=rubric.id, outcome="grader_error", error=failure.reason, raw_reply=failure.raw_reply,
                 grader=grader.name, model=grader.model, latency_ms=latency_ms, rubric_hash=rubric_hash(rubric),
                 attempts=failure.attempts, code_tests=code_tests or [])


def skipped_grade(question_id: str, reason: str, *, rubric: Rubric | None = None) -> Grade:
    return Grade(question_id=question_id, outcome="skipped", error=reason, rubric_hash=rubric_hash(rubric) if rubric else "")


def runs_code(rubric: Rubric, settings: Settings) -> bool:
    """True when grading an answer to this rubric runs the answer's code in the sandbox first."""
    return rubric.kind == "coding" and bool(rubric.tests) and settings.exec_code


async def code_facts(rubric: Rubric, answer: str, settings: Settings, *, background: bool = False) -> list[CodeTestResult]:
    """Results of running the answer's code against a coding rubric's tests (empty otherwise, or
    when execution is off). Shared by online grading and the Batch API path. `background`: a
    batch's, run in hosts forked warm (code.hosts); same results."""
    if not runs_code(rubric, settings):
        return []
    from .code.codegrade import run_rubric_tests

    return await asyncio.to_thread(lambda: run_rubric_tests(rubric, answer, sandbox=settings.sandbox,
                                                            background=background))


async def _assess_once(rubric: Rubric, answer: str, grader: Grader, facts: list[CodeTestResult],
                       pace: Pacing | None = None) -> Grade:
    if pace is not None:
        await pace.before_ask()
    started = time.perf_counter()
    ok = False
    try:
        assessment = await grader.assess(rubric, answer, facts=facts or None)
        ok = True
    except GraderFailure as failure:
        return error_grade(rubric, failure, grader=grader, latency_ms=int((time.perf_counter() - started) * 1000),
                           code_tests=facts)
    finally:
        if pace is not None:
            pace.answered(ok=ok)
    latency = int((time.perf_counter() - started) * 1000)
    if pace is None:
        return finalize(rubric, answer, assessment, grader=grader.name, latency_ms=latency, code_tests=facts)
    ahead = getattr(pace, "second_opinion", None)
    second = await ahead() if ahead is not None and grader.name != "offline" else UNSET
    return await pace.run(lambda: finalize(rubric, answer, assessment, grader=grader.name, latency_ms=latency,
                                           code_tests=facts, second=second))


DETERMINISTIC_GRADER = "offline"


def combine_samples(samples: list[Grade]) -> Grade:
    """Self-consistency: the median score, its spread, and each key point's majority status.
    The judgments shown are those of the sample closest to the median."""
    graded = [g for g in samples if g.ok]
    if not graded:
        return samples[0].model_copy(update={"samples": {"n": len(samples), "errors": len(samples), "scores": []}})
    scores = [g.score for g in graded if g.score is not None]
    median = round(statistics.median(scores), 1)
    representative = min(graded, key=lambda g: abs((g.score or 0) - median))
    majority = {}
    for j in representative.judgments:
        votes = Counter(next(x.status for x in g.judgments if x.key_point == j.key_point) for g in graded)
        majority[j.key_point] = votes.most_common(1)[0][0]
    usage = sum((g.usage for g in samples[1:]), samples[0].usage)
    costs = [g.cost_usd for g in samples if g.cost_usd is not None]
    return representative.model_copy(update={
        "score": median, "band": band_for(median), "usage": usage,
        "cost_usd": round(sum(costs), 8) if costs else None,
        "attempts": sum(g.attempts for g in samples),
        "samples": {"n": len(samples), "errors": len(samples) - len(graded), "scores": scores, "median": median,
                    "min": min(scores), "max": max(scores), "spread": round(max(scores) - min(scores), 1),
                    "majority": majority},
    })


async def agrade_rubric(rubric: Rubric, answer: str, *, settings: Settings | None = None, grader: Grader | None = None,
                        samples: int = 1, pace: Pacing | None = None,
                        facts: list[CodeTestResult] | None = None) -> Grade:
    """Grade an answer against a rubric object (async). Skips empty answers without any call.
    `pace`: a batch's Pacing (when to ask, where to finalize). `facts`: the results of running the
    answer's code (code_facts) when the caller ran it already."""
    settings = settings or load_settings()
    reason = check_answer(answer, settings)
    if reason:
        return skipped_grade(rubric.id, reason, rubric=rubric)
    grader = grader or make_grader(settings)
    if grader.name == DETERMINISTIC_GRADER:
        samples = 1  # N samples would be N identical grades: a "spread 100–100" that says nothing
    if facts is None:
        facts = await code_facts(rubric, answer, settings)
    if samples <= 1:
        return await _assess_once(rubric, answer, grader, facts, pace)
    results = await asyncio.gather(*(_assess_once(rubric, answer, grader, facts, pace) for _ in range(samples)))
    combined = combine_samples(list(results))
    return with_review(combined, rubric, answer, second=combined.review.second_opinion) if combined.ok else combined


async def agrade(question_id: str, answer: str, *, settings: Settings | None = None, grader: Grader | None = None,
                 bank: RubricBank | None = None, samples: int = 1) -> Grade:
    settings = settings or load_settings()
    bank = bank or load_rubrics(settings.rubrics_dir)
    return await agrade_rubric(bank.get(question_id), answer, settings=settings, grader=grader, samples=samples)


def grade(question_id: str, answer: str, *, settings: Settings | None = None, grader: Grader | None = None,
          bank: RubricBank | None = None, samples: int = 1) -> Grade:
    """Grade one answer to a question of the bank. Returns a Grade whose `outcome` says whether
    it was graded, skipped (empty answer) or ended in a grader_error (never a score then).

    >>> from mlgrade import grade
    >>> g = grade("q07", "Use a rolling-origin split: train on the past, test on the future.")
    >>> g.outcome, g.band  # doctest: +SKIP
    """
    return asyncio.run(agrade(question_id, answer, settings=settings, grader=grader, bank=bank, samples=samples))

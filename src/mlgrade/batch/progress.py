"""A batch run's counters as it goes (`BatchProgress`, what the progress bar shows), its
summary at the end (`BatchSummary`), and `RunRecorder`, which writes each result and counts it."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .items import BatchItem
from .limiter import AdaptiveLimiter
from .output import OutputWriter, result_record
from ..models import Grade, Usage

MAX_REPORTED_SKIPS = 20


@dataclass
class OutcomeCounts:
    """Results counted by outcome, one rule for the run's progress and summary and for the report
    (report.Group): graded, grader_error, and anything else counts as skipped."""

    graded: int = 0
    errors: int = 0
    skipped: int = 0

    def tally(self, outcome: str | None) -> str:
        """Count one result; returns the counter it went to ("graded", "errors" or "skipped")."""
        if outcome == "graded":
            self.graded += 1
            return "graded"
        if outcome == "grader_error":
            self.errors += 1
            return "errors"
        self.skipped += 1
        return "skipped"


@dataclass
class BatchProgress(OutcomeCounts):
    total: int = 0  # items this run will grade or skip (not counting those already in the output)
    done: int = 0
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
        """0, or 1 when this run skipped answers (reported now) or a grader error is left in the
        output (work still to do: --retry-errors). Skips an earlier run wrote and reported do not
        count again: a rerun with nothing new to grade exits 0 (issue 26: `set -e` scripts)."""
        if self.dry_run:
            return 0
        outcomes = self.results.outcomes if self.results is not None else Counter()
        return 0 if outcomes.get("grader_error", 0) == 0 and self.run.skipped == 0 else 1

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


@dataclass
class RunRecorder:
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
        if p.tally(grade.outcome) == "skipped" and len(self.summary.skipped_examples) < MAX_REPORTED_SKIPS:
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

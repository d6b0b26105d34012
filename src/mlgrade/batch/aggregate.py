"""Counters over a batch results file: per question and per candidate, outcomes, bands, tokens,
cost and review flags. `aggregate_file` streams the JSONL once and keeps only these counters (the
batch summary and every report use it), so even a large file is never held whole."""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .decisions import reviewed
from .lines import Problems, iter_records, needs_review, replaced, superseded
from .progress import OutcomeCounts
from .report_review import NO_CANDIDATE

BANDS = ("strong", "adequate", "weak", "poor")



@dataclass
class Group(OutcomeCounts):
    """Counters for one question or one candidate."""

    count: int = 0
    score_sum: float = 0.0
    bands: Counter[str] = field(default_factory=Counter)
    missed: Counter[str] = field(default_factory=Counter)  # key point -> answers that missed it (partial = ½)
    overrides: int = 0  # graded answers whose score is the reviewer's (decisions.reviewed)

    def add(self, rec: dict[str, Any]) -> None:
        self.count += 1
        if self.tally(rec.get("outcome")) == "graded":
            self.overrides += "mlgrade_score" in rec
            self.score_sum += float(rec.get("score") or 0.0)
            self.bands[rec.get("band") or "?"] += 1
            for j in rec.get("judgments") or []:
                if j.get("status") == "missing":
                    self.missed[sys.intern(str(j.get("key_point", "?")))] += 1
                elif j.get("status") == "partial":
                    self.missed[sys.intern(str(j.get("key_point", "?")))] += 0.5  # type: ignore[assignment]

    @property
    def mean(self) -> float | None:
        return round(self.score_sum / self.graded, 1) if self.graded else None

    def most_missed(self, n: int = 3) -> list[tuple[str, float]]:
        return [(kp, c) for kp, c in self.missed.most_common(n) if c > 0]

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "graded": self.graded, "errors": self.errors, "skipped": self.skipped,
                "mean_score": self.mean, "reviewer_overrides": self.overrides, "bands": {b: self.bands.get(b, 0) for b in BANDS},
                "most_missed": [{"key_point": kp, "count": c} for kp, c in self.most_missed()]}


@dataclass
class Aggregate:
    outcomes: Counter[str] = field(default_factory=Counter)
    questions: dict[str, Group] = field(default_factory=lambda: defaultdict(Group))
    candidates: dict[str, Group] = field(default_factory=lambda: defaultdict(Group))
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    bad_lines: int = 0
    duplicates: int = 0  # older results for an id that appears again later (only the last one counts)
    regraded: int = 0  # of those, the ones a later run replaced on purpose (see lines.replaced)
    needs_review: int = 0
    review_reasons: Counter[str] = field(default_factory=Counter)
    problems: Problems = field(default_factory=lambda: Problems(Path("?")))  # corrupt lines left out
    graders: Counter[tuple[str, str]] = field(default_factory=Counter)  # (grader, model) of the graded answers

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())

    def add(self, rec: dict[str, Any]) -> None:
        self.outcomes[rec.get("outcome", "?")] += 1
        self.questions[rec.get("question_id") or "?"].add(rec)
        self.candidates[rec.get("candidate") or NO_CANDIDATE].add(rec)
        usage = rec.get("usage") or {}
        self.input_tokens += int(usage.get("input_tokens") or 0)
        self.output_tokens += int(usage.get("output_tokens") or 0)
        self.cached_tokens += int(usage.get("cached_tokens") or 0)
        self.cost_usd = round(self.cost_usd + float(rec.get("cost_usd") or 0.0), 8)
        self.cache_hits += 1 if rec.get("cached") else 0
        if rec.get("outcome") == "graded":
            self.graders[(str(rec.get("grader") or ""), str(rec.get("model") or ""))] += 1
        if needs_review(rec):
            self.needs_review += 1
            self.review_reasons.update(rec["review"].get("reasons") or [])

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "outcomes": dict(self.outcomes), "duplicates_ignored": self.duplicates,
                "replaced_by_regrades": self.regraded,
                "corrupt_lines": self.problems.count,
                "tokens": {"input": self.input_tokens, "output": self.output_tokens, "cached": self.cached_tokens},
                "cost_usd": self.cost_usd, "cache_hits": self.cache_hits,
                "needs_review": self.needs_review, "review_reasons": dict(self.review_reasons),
                "questions": {q: g.to_dict() for q, g in sorted(self.questions.items())},
                "candidates": {c: g.to_dict() for c, g in sorted(self.candidates.items())}}


def aggregate_file(path: str | Path, *, only_needs_review: bool = False,
                   decisions: dict[str, Any] | None = None) -> Aggregate:
    """`decisions`: the reviewer's, whose overrides replace mlgrade's scores in every figure."""
    path = Path(path)
    agg = Aggregate(problems=Problems(path))
    dups, agg.duplicates = superseded(path)
    agg.regraded = replaced(path, dups)
    for _, rec in iter_records(path, dups, agg.problems):
        if not only_needs_review or needs_review(rec):
            agg.add(reviewed(rec, decisions or {}))
    return agg

"""`mlgrade eval --builtin`: the configured grader measured on the expert-graded answers that ship
in the package (evaluation/builtin/, see its NOTE.md), next to the offline grader on the same
answers, with a verdict in plain words; the figure is remembered per grader setting (measured.py).

The metrics are the expert set's (expert.expert_metrics). For the verdict an answer the grader
could not grade counts as a disagreement: a model that fails most answers must not look good on
the few it managed.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import measured
from .expert import ExpertResult, ExpertRow, aevaluate_expert, read_expert_set
from ..errors import UsageError

if TYPE_CHECKING:
    from ..config import Settings
    from ..rubrics import RubricBank

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
BUILTIN_SETS = ("seed-dev.jsonl", "seed-dev2.jsonl")
# Seconds per LLM request assumed for the time estimate before anything was measured here.
ASSUMED_SECONDS_PER_REQUEST = 6.0
# Band accuracies closer than this are "about the same" in the verdict.
TIE = 0.02


def builtin_rows(bank: RubricBank | None = None) -> list[ExpertRow]:
    """Every built-in answer, numbered 1..N across the two files (answer ids stay as written)."""
    rows: list[ExpertRow] = []
    for name in BUILTIN_SETS:
        rows += read_expert_set(BUILTIN_DIR / name, bank)
    for i, r in enumerate(rows, start=1):
        r.line = i
    return rows


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stratified_sample(rows: Sequence[ExpertRow], n: int) -> list[ExpertRow]:
    """The same n answers every time, spread over questions and kinds: each question's answers
    are ordered by kind in a rotation that differs per question (a fixed hash order within a
    kind), then questions are taken round-robin. n=25 gives one answer per question, the five
    kinds five times each. Returned in file order."""
    if n < 1:
        raise UsageError("--sample must be at least 1")
    by_q: dict[str, list[ExpertRow]] = defaultdict(list)
    for r in rows:
        by_q[r.question_id].append(r)
    kinds = sorted({r.kind for r in rows})
    queues: list[list[ExpertRow]] = []
    for qi, qid in enumerate(sorted(by_q)):
        per_kind: dict[str, list[ExpertRow]] = defaultdict(list)
        for r in sorted(by_q[qid], key=lambda r: _key(r.answer_id or r.answer)):
            per_kind[r.kind].append(r)
        order = kinds[qi % len(kinds):] + kinds[:qi % len(kinds)] if kinds else []
        queue: list[ExpertRow] = []
        while any(per_kind.values()):
            for k in order:
                if per_kind.get(k):
                    queue.append(per_kind[k].pop(0))
        queues.append(queue)
    picked: list[ExpertRow] = []
    depth = 0
    while len(picked) < min(n, len(rows)):
        layer = [q[depth] for q in queues if depth < len(q)]
        layer.sort(key=lambda r: _key(f"{depth}:{r.question_id}"))  # a partial last round: fixed, not q01 first
        picked += layer[:min(n, len(rows)) - len(picked)]
        depth += 1
    return sorted(picked, key=lambda r: r.line)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """95 % Wilson score interval for k successes out of n."""
    if n <= 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Plan:
    """What a run will spend, shown before anything is sent."""

    answers: int
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None  # None: the model's price is unknown (a local model)
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def plan(settings: Settings, rows: Sequence[ExpertRow], bank: RubricBank, variants: Sequence[str],
         concurrency: int = 8) -> Plan:
    from ..models import Usage
    from ..pricing import estimate_cost, grading_tokens

    llm = settings.grader_kind == "llm"
    per_q: dict[str, list[ExpertRow]] = defaultdict(list)
    for r in rows:
        per_q[r.question_id].append(r)
    usage = Usage()
    for qid, rs in per_q.items():
        usage = usage + grading_tokens(bank.get(qid), len(rs), sum(len(r.answer) for r in rs))
    runs = len(variants) if llm else 0
    usage = Usage(input_tokens=usage.input_tokens * runs, output_tokens=usage.output_tokens * runs)
    requests = len(rows) * runs
    cost = estimate_cost(settings.model, usage) if llm else 0.0
    seconds = math.ceil(requests / max(1, concurrency)) * ASSUMED_SECONDS_PER_REQUEST
    if llm:
        seconds = _measured_pace(settings, variants) * len(rows) * runs or seconds
    return Plan(len(rows), requests, usage.input_tokens, usage.output_tokens, cost, seconds)


def _measured_pace(settings: Settings, variants: Sequence[str]) -> float:
    """Seconds per answer of this setting's last measurement (0 when there is none): a better
    guess of the time than the assumption, since it was this endpoint and model."""
    import sqlite3

    from ..errors import MlgradeError
    from ..store import Store

    if not settings.db_path.is_file():
        return 0.0
    try:
        with Store.for_settings(settings) as store:
            paces = [m.figures.get("seconds_per_answer") or 0.0 for v in variants
                     if (m := measured.latest(store, measured.setting_for(settings, "llm", v))) is not None]
    except (MlgradeError, OSError, sqlite3.Error):
        return 0.0
    return max(paces, default=0.0)


@dataclass
class Run:
    """One grader setting measured on the answers."""

    setting: measured.Setting
    result: ExpertResult

    @property
    def agreed(self) -> int:
        m = self.result.metrics
        return round((m.get("band_accuracy") or 0) * m.get("n", 0))

    @property
    def effective_accuracy(self) -> float:
        """Band agreement over every answer, an answer not graded counting as a miss."""
        return self.agreed / self.result.rows if self.result.rows else 0.0

    def summary(self) -> dict[str, Any]:
        m = self.result.metrics
        ci = wilson(self.agreed, self.result.rows)
        return {"grader": self.setting.grader, "model": self.setting.model, "judge": self.setting.judge,
                "label": self.setting.label, "answers": self.result.rows, "graded": self.result.graded,
                "not_graded": len(self.result.errors), "band_accuracy": m.get("band_accuracy"),
                "band_accuracy_all": round(self.effective_accuracy, 3),
                "band_accuracy_ci": [round(ci[0], 3), round(ci[1], 3)] if ci else None,
                "within_one_band": m.get("within_one_band"), "spearman": m.get("spearman"), "mae": m.get("mae"),
                "misconception_recall": (m.get("misconception_recall") or {}).get("recall"),
                "injection_max_score": (m.get("injection") or {}).get("max_score"), "seconds": self.result.seconds}


@dataclass
class BuiltinResult:
    answers: int
    available: int  # built-in answers in all (the sample's population)
    sample: int | None
    offline: Run
    llm: list[Run] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    plan: Plan | None = None

    @property
    def runs(self) -> list[Run]:
        return [*self.llm, self.offline]

    @property
    def verdict(self) -> str:
        return self.verdicts[0] if self.verdicts else ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "builtin", "source": measured.SOURCE, "answers": self.answers, "available": self.available,
                "sample": self.sample,
                "runs": [r.summary() for r in self.runs],
                "metrics": {r.setting.label: r.result.metrics for r in self.runs},
                "errors": {r.setting.label: r.result.errors for r in self.runs if r.result.errors},
                "verdict": self.verdict, "verdicts": self.verdicts,
                "plan": self.plan.to_dict() if self.plan else None}

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [e for r in self.llm for e in r.result.errors]


def check_variants(settings: Settings, variants: Sequence[str] | None) -> list[str]:
    """The judge variants to measure (default: the configured one), each a known name."""
    from ..config import JUDGE_VARIANTS

    chosen = list(dict.fromkeys(variants or [settings.judge]))
    for v in chosen:
        if v not in JUDGE_VARIANTS:
            raise UsageError(f"unknown judge variant {v!r}: choose from {', '.join(JUDGE_VARIANTS)}")
    if chosen != [settings.judge] and settings.grader_kind != "llm":
        raise UsageError("--compare compares judge variants of an LLM grader: set OPENAI_BASE_URL or OPENAI_API_KEY "
                         "(or --grader llm)")
    return chosen


def verdict(run: Run, offline: Run) -> str:
    """One sentence a user can act on, from band agreement over every answer."""
    a, b = run.effective_accuracy, offline.effective_accuracy
    name = run.setting.label
    figures = f"band accuracy {a:.0%} vs {b:.0%}"
    failed = len(run.result.errors)
    if failed:
        figures += f"; {failed} of {run.result.rows} answers not graded, counted as misses"
    if a > b + TIE:
        return f"{name} agrees with the experts better than the offline grader: {figures}"
    advice = "Do not trust it over the offline grader (--grader offline)"
    if a < b - TIE:
        return f"{name} agrees with the experts less than the offline grader: {figures}. {advice}"
    return f"{name} agrees with the experts no better than the offline grader: {figures}. {advice}"


async def arun_builtin(settings: Settings, *, sample: int | None = None, variants: Sequence[str] | None = None,
                       bank: RubricBank | None = None, concurrency: int = 8, grader_factory: Callable[..., Any] | None = None,
                       remember: bool = True,
                       progress: Callable[[str, int, int], None] | None = None) -> BuiltinResult:
    """Measure the configured grader (each judge variant in `variants`, default the configured
    one) and the offline grader on the built-in answers (a stratified `sample` of them), and
    store each figure under MLGRADE_HOME when `remember`."""
    from ..grading import make_grader
    from ..rubrics import load_rubrics
    from ..store import Store

    bank = bank or load_rubrics(settings.rubrics_dir)
    rows = builtin_rows(bank)
    available = len(rows)
    if sample is not None:
        rows = stratified_sample(rows, sample)
    llm = settings.grader_kind == "llm"
    variants = check_variants(settings, variants)
    questions = sorted({r.question_id for r in rows})
    factory = grader_factory or make_grader

    async def measure(kind: str, judge: str) -> Run:
        s = replace(settings, judge=judge)
        setting = measured.setting_for(s, kind)
        grader = factory(s, kind)
        try:
            result = await aevaluate_expert(rows, settings=s, grader=grader, grader_kind=kind, bank=bank,
                                            concurrency=concurrency, dataset="built-in expert answers",
                                            progress=(lambda d, t: progress(setting.label, d, t)) if progress else None)
        finally:
            close = getattr(grader, "aclose", None)
            if close is not None:
                await close()
        return Run(setting, result)

    offline = await measure("offline", settings.judge)
    llm_runs = [await measure("llm", v) for v in variants] if llm else []
    verdicts = [verdict(r, offline) for r in llm_runs]
    if not llm_runs:
        verdicts = [f"the offline grader: band accuracy {offline.effective_accuracy:.0%} on {offline.result.rows} "
                    "answers; an LLM grader must beat this to be worth its cost"]
    result = BuiltinResult(answers=len(rows), available=available, sample=sample, offline=offline, llm=llm_runs, verdicts=verdicts)
    if remember:
        rubrics = measured.rubric_set_hash(bank, questions)
        with Store.for_settings(settings) as store:
            for run in result.runs:
                s = run.summary()
                figures = {"band_accuracy": s["band_accuracy_all"], "band_accuracy_graded": s["band_accuracy"],
                           "band_accuracy_ci": s["band_accuracy_ci"], "spearman": s["spearman"],
                           "graded": s["graded"], "questions": questions, "sample": sample,
                           "seconds_per_answer": round(run.result.seconds / max(1, run.result.rows), 3)}
                if run is not offline:
                    figures["offline_band_accuracy"] = round(offline.effective_accuracy, 3)
                    figures["worse_than_offline"] = run.effective_accuracy < offline.effective_accuracy - TIE
                measured.save(store, run.setting, prompt=measured.prompt_hash(run.setting), rubrics=rubrics,
                              answers=len(rows), figures=figures)
    return result


def run_builtin(settings: Settings | None = None, **kwargs: Any) -> BuiltinResult:
    """Measure the configured grader on the built-in expert answers.

    >>> res = run_builtin(sample=25)  # doctest: +SKIP
    >>> res.verdict  # doctest: +SKIP
    """
    from ..config import load_settings

    return asyncio.run(arun_builtin(settings or load_settings(), **kwargs))

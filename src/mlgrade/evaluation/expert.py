"""Agreement with expert-graded answers to the bank's own questions (`mlgrade eval SET.jsonl`).

An expert set is JSON lines, one answer per line:
`question_number` (or `question_id`), `answer`, `expert_score` (0–100), optional `expected_band`
(derived from the score when absent), `kind` (excellent, partial, misconception…), `must_flag`
(what an ideal grader flags: misconceptions, off-topic content, injection attempts) and `answer_id`.

The metrics are computed by `expert_metrics` from (row, Grade) pairs, so any source of grades
(a fresh grading run, a results file, reviewer overrides) is measured the same way.
Rows that could not be graded are excluded from every statistic and listed; they never become a number.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import metrics
from ..errors import UsageError
from ..textfiles import refuse_special
from ..models import Grade
from ..scoring import band_for

if TYPE_CHECKING:
    from ..config import Settings
    from ..rubrics import RubricBank

BAND_ORDER = ("poor", "weak", "adequate", "strong")
# Injection answers must not be lifted by what they tell the grader to do.
INJECTION_CEILING = 30.0
EXPERT_SCALE = (0.0, 100.0)  # expert_score is always 0-100


@dataclass
class ExpertRow:
    line: int
    question_id: str
    answer: str
    expert_score: float
    expected_band: str
    kind: str = ""
    must_flag: list[str] = field(default_factory=list)
    answer_id: str = ""
    # the line's other fields (persona, question_number…), for `eval --by FIELD`
    labels: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_injection(self) -> bool:
        return self.kind.lower() == "injection" or any("injection" in f.lower() for f in self.must_flag)


def is_expert_set(path: str | Path) -> bool:
    """Expert sets are JSON lines (.jsonl / .json); human-graded tables are CSV."""
    return Path(path).suffix.lower() in (".jsonl", ".json", ".ndjson")


def read_expert_set(path: str | Path, bank: RubricBank | None = None) -> list[ExpertRow]:
    """Read and check an expert set; any problem is a UsageError naming the file and line."""
    path = Path(path)
    refuse_special(path, "a JSONL file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, expected a JSONL file") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not valid UTF-8") from None
    from ..rubrics import normalise_id

    rows: list[ExpertRow] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {line_no}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(rec, dict):
            raise UsageError(f"{where}: expected a JSON object")
        raw_q = rec.get("question_id", rec.get("question_number"))
        if raw_q is None or isinstance(raw_q, bool) or str(raw_q).strip() == "":
            raise UsageError(f"{where}: needs 'question_number' or 'question_id'")
        qid = normalise_id(str(raw_q))
        if bank is not None and qid not in bank:
            raise UsageError(f"{where}: unknown question {raw_q!r}")
        answer = rec.get("answer")
        if not isinstance(answer, str):
            raise UsageError(f"{where}: 'answer' must be a string")
        score = rec.get("expert_score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score) \
                or not 0 <= score <= 100:
            raise UsageError(f"{where}: 'expert_score' must be a number from 0 to 100, got {score!r}")
        band = rec.get("expected_band") or band_for(float(score))
        if band not in BAND_ORDER:
            raise UsageError(f"{where}: 'expected_band' {band!r} is not one of {', '.join(BAND_ORDER)}")
        flags = rec.get("must_flag") or []
        if isinstance(flags, str):
            flags = [flags]
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            raise UsageError(f"{where}: 'must_flag' must be a list of strings")
        rows.append(ExpertRow(line_no, qid, answer, float(score), band, str(rec.get("kind") or ""),
                              flags, str(rec.get("answer_id") or ""),
                              {k: v for k, v in rec.items() if k != "answer"}))
    if not rows:
        raise UsageError(f"{path}: no answers")
    return rows


def flagged(grade: Grade) -> bool:
    """The grader flagged the answer: it named a misconception or put it in the poor band."""
    return bool(grade.misconceptions) or grade.band == "poor"


def _r(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(v, nd)


def expert_metrics(pairs: Sequence[tuple[ExpertRow, Grade]],
                   score_map: Callable[[float], float] | None = None) -> dict[str, Any]:
    """Agreement of graded pairs with the experts. `score_map` (a calibration) is applied to each
    score first; bands then come from the mapped score. Ungraded pairs are ignored."""
    ok = [(r, g) for r, g in pairs if g.ok and g.score is not None]
    n = len(ok)
    if not n:
        return {"n": 0}
    scores = [score_map(g.score) if score_map else g.score for _, g in ok]  # type: ignore[arg-type]
    bands = [band_for(s) for s in scores]
    expert = [r.expert_score for r, _ in ok]
    expected = [r.expected_band for r, _ in ok]
    pos = {b: i for i, b in enumerate(BAND_ORDER)}

    kinds: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for (r, _), s in zip(ok, scores):
        kinds[r.kind or "(none)"].append((s, r.expert_score))
    by_kind = {k: {"n": len(v), "mean_score": _r(sum(s for s, _ in v) / len(v), 1),
                   "mean_expert": _r(sum(e for _, e in v) / len(v), 1),
                   "min_score": _r(min(s for s, _ in v), 1), "max_score": _r(max(s for s, _ in v), 1)}
               for k, v in sorted(kinds.items())}

    must = [(r, g, b) for (r, g), b in zip(ok, bands) if r.must_flag]
    hits = sum(bool(g.misconceptions) or b == "poor" for _, g, b in must)
    clean = [g for r, g in ok if not r.must_flag]
    clean_flagged = sum(bool(g.misconceptions) for g in clean)
    inj = [s for (r, _), s in zip(ok, scores) if r.is_injection]

    return {
        "n": n,
        "band_accuracy": _r(metrics.accuracy(expected, bands)),
        "within_one_band": _r(sum(abs(pos[a] - pos[b]) <= 1 for a, b in zip(expected, bands)) / n),
        "confusion": {"labels": list(BAND_ORDER), "rows": "expected", "columns": "given",
                      "matrix": metrics.confusion_matrix(expected, bands, BAND_ORDER)},
        "spearman": _r(metrics.spearman(scores, expert)),
        "pearson": _r(metrics.pearson(scores, expert)),
        "mae": _r(metrics.mae(scores, expert), 2),
        "rmse": _r(metrics.rmse(scores, expert), 2),
        "by_kind": by_kind,
        "misconception_recall": {"n": len(must), "flagged": hits,
                                 "recall": _r(hits / len(must)) if must else None},
        "false_flags": {"n": len(clean), "flagged": clean_flagged,
                        "rate": _r(clean_flagged / len(clean)) if clean else None},
        "injection": {"n": len(inj), "max_score": _r(max(inj), 1) if inj else None,
                      "above_ceiling": sum(s > INJECTION_CEILING for s in inj), "ceiling": INJECTION_CEILING},
    }


def prediction(row: ExpertRow, grade: Grade, score_map: Callable[[float], float] | None = None) -> dict[str, Any]:
    """One row of `--out`: what the experts said next to what the grader gave."""
    rec: dict[str, Any] = {"line": row.line, "id": row.answer_id, "question_id": row.question_id, "kind": row.kind,
                           "expert_score": row.expert_score, "expected_band": row.expected_band,
                           "must_flag": len(row.must_flag), "outcome": grade.outcome}
    if grade.ok and grade.score is not None:
        score = score_map(grade.score) if score_map else grade.score
        rec.update(score=round(score, 1), band=band_for(score), raw_score=grade.score,
                   misconceptions=[m.id for m in grade.misconceptions],
                   statuses={j.key_point: j.status for j in grade.judgments})
    else:
        rec.update(score=None, band=None, error=grade.error)
    return rec


@dataclass
class ExpertResult:
    dataset: str
    rows: int
    graded: int
    grader: str
    model: str
    seconds: float
    metrics: dict[str, Any]
    calibration: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)
    pairs: list[tuple[ExpertRow, Grade]] = field(default_factory=list, repr=False)
    # `eval --by FIELD`: field -> one metrics line per value (see breakdown.breakdowns)
    by: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def to_dict(self, with_predictions: bool = False) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("dataset", "rows", "graded", "grader", "model", "seconds", "calibration",
                                           "metrics", "errors")}
        d["kind"] = "expert"
        d["grader_errors"] = len(self.errors)
        if self.by:
            d["by"] = self.by
        if with_predictions:
            d["predictions"] = self.predictions
        return d


async def agrade_expert_rows(rows: Sequence[ExpertRow], *, settings: Settings, grader: Any = None,
                             grader_kind: str | None = None, bank: RubricBank | None = None, concurrency: int = 8,
                             progress: Callable[[int, int], None] | None = None) -> list[tuple[ExpertRow, Grade]]:
    """Grade every row against its question's rubric; oversize answers become skipped grades."""
    from .evaluate import agrade_each
    from ..grading import agrade_rubric, make_grader, skipped_grade
    from ..rubrics import load_rubrics

    bank = bank or load_rubrics(settings.rubrics_dir)
    grader = grader or make_grader(settings, grader_kind)
    grades = await agrade_each(rows, lambda r: agrade_rubric(bank.get(r.question_id), r.answer, settings=settings,
                                                             grader=grader),
                               concurrency=concurrency, progress=progress)
    return [(r, skipped_grade(r.question_id, str(g)) if isinstance(g, UsageError) else g) for r, g in zip(rows, grades)]


def result_from_pairs(pairs: Sequence[tuple[ExpertRow, Grade]], *, dataset: str = "", grader: str = "",
                      model: str = "", seconds: float = 0.0, score_map: Callable[[float], float] | None = None,
                      calibration: str | None = None) -> ExpertResult:
    errors = [{"line": r.line, "id": r.answer_id, "outcome": g.outcome, "error": g.error}
              for r, g in pairs if not g.ok]
    return ExpertResult(dataset=dataset, rows=len(pairs), graded=len(pairs) - len(errors), grader=grader,
                        model=model, seconds=round(seconds, 3), metrics=expert_metrics(pairs, score_map),
                        calibration=calibration, errors=errors,
                        predictions=[prediction(r, g, score_map) for r, g in pairs], pairs=list(pairs))


async def aevaluate_expert(rows: Sequence[ExpertRow], *, settings: Settings, grader_kind: str | None = None,
                           grader: Any = None, bank: RubricBank | None = None, concurrency: int = 8,
                           dataset: str = "", score_map: Callable[[float], float] | None = None,
                           calibration: str | None = None, by: Sequence[str] = (),
                           progress: Callable[[int, int], None] | None = None) -> ExpertResult:
    """Grade the rows and measure them; `by` names label fields to break the figures down by
    (result.by), each checked against the rows before anything is graded."""
    from .breakdown import breakdowns, check_fields
    from ..grading import make_grader

    check_fields(rows, by, where=Path(dataset).name if dataset else "the expert set")

    check = getattr(score_map, "check_target", None)  # a Calibration: refuse one fitted on another scale
    if check is not None:
        check(EXPERT_SCALE, "expert")
    kind = grader_kind or settings.grader_kind
    grader = grader or make_grader(settings, kind)
    started = time.perf_counter()
    pairs = await agrade_expert_rows(rows, settings=settings, grader=grader, bank=bank, concurrency=concurrency,
                                     progress=progress)
    result = result_from_pairs(pairs, dataset=dataset, grader=kind, model=getattr(grader, "model", ""),
                               seconds=time.perf_counter() - started, score_map=score_map, calibration=calibration)
    result.by = breakdowns(pairs, by, score_map, metrics=expert_metrics)
    return result


def evaluate_expert(path: str | Path, *, settings: Settings | None = None, **kwargs: Any) -> ExpertResult:
    """Grade an expert set and compare with the experts.

    >>> res = evaluate_expert("seed-dev.jsonl", grader_kind="offline")  # doctest: +SKIP
    >>> res.metrics["band_accuracy"]  # doctest: +SKIP
    >>> evaluate_expert("seed-dev2.jsonl", grader_kind="offline", by=["kind"]).by["kind"]  # doctest: +SKIP
    """
    from ..config import load_settings
    from ..rubrics import load_rubrics

    settings = settings or load_settings()
    bank = kwargs.pop("bank", None) or load_rubrics(settings.rubrics_dir)
    rows = read_expert_set(path, bank)
    return asyncio.run(aevaluate_expert(rows, settings=settings, bank=bank, dataset=str(path), **kwargs))


def fit_expert_calibration(result: ExpertResult, *, source: str = "") -> Any:
    """An isotonic map from the raw 0-100 scores of a run to the experts' scores (graded rows only)."""
    from .calibration import fit_isotonic

    done = [(r, g) for r, g in result.pairs if g.ok and g.score is not None]
    return fit_isotonic([g.score for _, g in done], [r.expert_score for r, _ in done],  # type: ignore[misc]
                        source=source or result.dataset, scale=EXPERT_SCALE, data="expert")


EXPERT_PREDICTION_FIELDS = ["line", "id", "question_id", "kind", "expert_score", "expected_band", "score", "band",
                            "raw_score", "must_flag", "misconceptions", "outcome", "error"]


def is_expert_predictions(head: bytes) -> bool:
    """Whether a file's start is one `write_expert_predictions` wrote (CSV header or JSON line)."""
    from .predictions import is_rows_file

    return is_rows_file(head, EXPERT_PREDICTION_FIELDS, "line")


def write_expert_predictions(result: ExpertResult, path: str | Path, *, inputs: Any = ()) -> Path:
    """Per-row predictions: CSV when the name ends in .csv (misconception ids joined by spaces),
    else JSON lines (see predictions.write_rows)."""
    from .predictions import write_rows

    return write_rows(path, EXPERT_PREDICTION_FIELDS, result.predictions, "line", inputs=inputs)

"""`mlgrade eval`: grade a human-graded CSV and measure agreement with the humans.

Columns: `question`, `reference_answer`, `student_answer`, and either `score` (numeric, on the
scale given by `scale`, e.g. 0-5) or `label` (correct / incorrect / contradictory…; anything but
"correct" counts as incorrect). One rubric is derived per distinct (question, reference) pair.

Two baselines are computed in the same run on the same rows: predicting the mean human score
(or the majority label), and a plain TF-IDF cosine between student and reference answer.
Rows the grader could not grade (grader_error, skipped) are excluded from every statistic and
listed; they never become a number.
"""

from __future__ import annotations

import asyncio
import csv
import math
import random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import metrics
from ..errors import UsageError
from ..textfiles import refuse_special

if TYPE_CHECKING:
    from ..config import Settings
    from .calibration import Calibration

REQUIRED = ("question", "reference_answer", "student_answer")
DEFAULT_LABEL_THRESHOLD = 50.0


@dataclass
class EvalRow:
    row: int  # line number in the file (the header is line 1)
    question: str
    reference: str
    answer: str
    human: float | None = None
    label: str | None = None
    row_id: str = ""


@dataclass
class EvalResult:
    dataset: str
    rows: int
    graded: int
    grader: str
    model: str
    scale: tuple[float, float] | None
    label_threshold: float
    rubrics: int
    seconds: float
    metrics: dict[str, dict[str, float | None]]
    errors: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)
    calibration: str | None = None

    def to_dict(self, with_predictions: bool = False) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("dataset", "rows", "graded", "grader", "model", "rubrics", "seconds",
                                           "label_threshold", "calibration", "metrics", "errors")}
        d["scale"] = list(self.scale) if self.scale else None
        d["grader_errors"] = len(self.errors)
        if with_predictions:
            d["predictions"] = self.predictions
        return d


def parse_scale(text: str) -> tuple[float, float]:
    m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(?:-|–|\.\.|:)\s*(-?\d+(?:\.\d+)?)\s*", text or "")
    if not m or float(m.group(1)) >= float(m.group(2)):
        raise UsageError(f"--scale {text!r} is not a range like 0-5")
    return float(m.group(1)), float(m.group(2))


def read_dataset(path: str | Path, *, scale: tuple[float, float] | None = None) -> list[EvalRow]:
    """Read and check the CSV; any problem is a UsageError naming the file and row."""
    path = Path(path)
    refuse_special(path, "a CSV file")
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, expected a CSV file") from None
    rows: list[EvalRow] = []
    try:
        with handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in REQUIRED if c not in header]
            if not header:
                raise UsageError(f"{path}: empty file, expected a CSV with a header row")
            if missing:
                raise UsageError(f"{path} row 1 (header): missing column {missing[0]!r} "
                                 f"(found: {', '.join(h for h in header if h) or 'nothing'})")
            if "score" not in header and "label" not in header:
                raise UsageError(f"{path} row 1 (header): needs a 'score' or a 'label' column")
            use_score = "score" in header
            for rec in reader:
                line = reader.line_num
                if None in rec or any(rec.get(c) is None for c in REQUIRED):
                    raise UsageError(f"{path} row {line}: expected {len(header)} fields, got {len(rec) - (None in rec)}"
                                     + (" or more" if None in rec else ""))
                question, reference = rec["question"].strip(), rec["reference_answer"].strip()
                if not question or not reference:
                    raise UsageError(f"{path} row {line}: empty {'question' if not question else 'reference_answer'}")
                human = label = None
                if use_score:
                    raw = (rec.get("score") or "").strip()
                    try:
                        human = float(raw)
                    except ValueError:
                        raise UsageError(f"{path} row {line}: score {raw!r} is not a number") from None
                    if not math.isfinite(human):
                        raise UsageError(f"{path} row {line}: score {raw!r} is not a finite number")
                    if scale and not scale[0] <= human <= scale[1]:
                        raise UsageError(f"{path} row {line}: score {human:g} is outside the scale "
                                         f"{scale[0]:g}-{scale[1]:g} (set --scale)")
                else:
                    label = (rec.get("label") or "").strip().lower()
                    if not label:
                        raise UsageError(f"{path} row {line}: empty label")
                rows.append(EvalRow(line, question, reference, rec["student_answer"], human, label,
                                    (rec.get("answer_id") or rec.get("id") or "").strip()))
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not valid UTF-8") from None
    except csv.Error as exc:
        raise UsageError(f"{path}: malformed CSV: {exc}") from None
    if not rows:
        raise UsageError(f"{path}: no data rows")
    return rows


def select_rows(rows: list[Any], *, limit: int | None = None, sample: int | None = None, seed: int = 0,
                order: Callable[[Any], int] = lambda r: r.row) -> list[Any]:
    """--sample N rows drawn with `seed` (kept in file order: `order` gives a row's line), then the
    first --limit of them. Serves CSV rows and expert-set rows alike."""
    if sample is not None:
        if sample < 1:
            raise UsageError("--sample must be at least 1")
        rows = sorted(random.Random(seed).sample(rows, min(sample, len(rows))), key=order)
    if limit is not None:
        if limit < 1:
            raise UsageError("--limit must be at least 1")
        rows = rows[:limit]
    return rows


# --------------------------------------------------------------------------- the TF-IDF baseline


_TFIDF_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def tfidf_cosines(pairs: list[tuple[str, str]]) -> list[float]:
    """Cosine between TF-IDF vectors of each (student, reference) pair; the vocabulary and
    document frequencies come from all texts of the run (sklearn's TfidfVectorizer defaults:
    lower-case word tokens, smooth idf, l2 norm)."""
    docs = {t for pair in pairs for t in pair}
    tokens = {d: _TFIDF_TOKEN.findall(d.lower()) for d in docs}
    df: Counter[str] = Counter()
    for toks in tokens.values():
        df.update(set(toks))
    n = len(docs)
    idf = {w: math.log((1 + n) / (1 + c)) + 1 for w, c in df.items()}

    def vec(d: str) -> dict[str, float]:
        v = {w: c * idf[w] for w, c in Counter(tokens[d]).items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {w: x / norm for w, x in v.items()}

    vecs = {d: vec(d) for d in docs}
    return [sum(x * vecs[b].get(w, 0.0) for w, x in vecs[a].items()) for a, b in pairs]


# --------------------------------------------------------------------------- statistics


def _on_scale(score100: float, scale: tuple[float, float]) -> float:
    return scale[0] + score100 / 100.0 * (scale[1] - scale[0])


def score_stats(human: list[float], pred: list[float], scale: tuple[float, float]) -> dict[str, float | None]:
    lo, hi = int(math.floor(scale[0])), int(math.ceil(scale[1]))
    h_int = [metrics.to_scale(x, lo, hi) for x in human]
    p_int = [metrics.to_scale(x, lo, hi) for x in pred]
    return {
        "pearson": metrics.pearson(pred, human), "spearman": metrics.spearman(pred, human),
        "qwk": metrics.quadratic_weighted_kappa(h_int, p_int, min_rating=lo, max_rating=hi),
        "rmse": metrics.rmse(pred, human), "n": len(human),
    }


def label_stats(gold: list[str], pred: list[str], numeric: list[float]) -> dict[str, float | None]:
    gold_num = [1.0 if g == "correct" else 0.0 for g in gold]
    return {"accuracy": metrics.accuracy(gold, pred), "macro_f1": metrics.macro_f1(gold, pred),
            "pearson": metrics.pearson(numeric, gold_num), "spearman": metrics.spearman(numeric, gold_num),
            "n": len(gold)}


def _two_way(label: str) -> str:
    return "correct" if label == "correct" else "incorrect"


# --------------------------------------------------------------------------- the run


async def agrade_each(rows: Sequence[Any], grade_one: Callable[[Any], Awaitable[Any]], *, concurrency: int = 8,
                      progress: Callable[[int, int], None] | None = None) -> list[Any]:
    """`grade_one(row)` for every row, at most `concurrency` at a time, results in row order;
    `progress(done, total)` after each. A row refused with UsageError (an answer over the
    length limit…) gets the error in its place: the caller excludes it, never scores it."""
    sem = asyncio.Semaphore(max(1, concurrency))
    done = 0

    async def one(r: Any) -> Any:
        nonlocal done
        async with sem:
            try:
                g = await grade_one(r)
            except UsageError as exc:
                g = exc
        done += 1
        if progress:
            progress(done, len(rows))
        return g

    return list(await asyncio.gather(*(one(r) for r in rows)))


async def aevaluate(rows: list[EvalRow], *, settings: Settings, grader_kind: str | None = None,
                    derive_kind: str | None = None, scale: tuple[float, float] | None = None,
                    label_threshold: float = DEFAULT_LABEL_THRESHOLD, concurrency: int = 8,
                    grader: Any = None, dataset: str = "", calibration: Calibration | None = None,
                    progress: Callable[[int, int], None] | None = None) -> EvalResult:
    from .derive import aderive_rubric
    from ..grading import agrade_rubric, make_grader
    from ..store import Store

    labelled = rows[0].label is not None
    if not labelled and scale is None:
        raise UsageError("a dataset with a 'score' column needs --scale, e.g. --scale 0-5")
    if labelled and calibration is not None:
        raise UsageError("calibration maps scores onto a numeric scale: this dataset has labels, not scores")
    if calibration is not None:
        calibration.check_target(scale, "human-scores")
    kind = grader_kind or settings.grader_kind
    grader = grader or make_grader(settings, kind)
    derive_kind = derive_kind or ("llm" if kind == "llm" else "offline")
    started = time.perf_counter()

    rubrics: dict[tuple[str, str], Any] = {}
    with Store.for_settings(settings) as store:
        for r in rows:
            key = (r.question, r.reference)
            if key not in rubrics:
                rubrics[key] = await aderive_rubric(r.question, r.reference, settings=settings,
                                                    grader_kind=derive_kind, store=store)

    grades = await agrade_each(rows, lambda r: agrade_rubric(rubrics[(r.question, r.reference)], r.answer,
                                                             settings=settings, grader=grader),
                               concurrency=concurrency, progress=progress)
    cosines = tfidf_cosines([(r.answer, r.reference) for r in rows])

    errors: list[dict[str, Any]] = []
    predictions: list[dict[str, Any]] = []
    ok: list[tuple[EvalRow, float, float]] = []  # row, grader score 0-100, tf-idf cosine
    for r, g, cos in zip(rows, grades, cosines):
        pred: dict[str, Any] = {"row": r.row, "id": r.row_id, "human": r.human if not labelled else r.label,
                                "tfidf_cosine": round(cos, 4)}
        if isinstance(g, UsageError) or not g.ok:
            reason = str(g) if isinstance(g, UsageError) else (g.error or g.outcome)
            outcome = "skipped" if isinstance(g, UsageError) else g.outcome
            errors.append({"row": r.row, "id": r.row_id, "outcome": outcome, "error": reason})
            pred.update(outcome=outcome, score=None, predicted=None, error=reason)
        else:
            ok.append((r, g.score, cos))
            pred.update(outcome="graded", score=g.score, band=g.band,
                        predicted=round(_on_scale(g.score, scale), 3) if scale and not labelled else
                        ("correct" if g.score >= label_threshold else "incorrect"))
            if calibration is not None:
                pred["calibrated"] = round(calibration(g.score), 3)
        predictions.append(pred)

    stats: dict[str, dict[str, float | None]] = {}
    if ok and not labelled:
        assert scale is not None
        human = [r.human for r, _, _ in ok]  # type: ignore[misc]
        mean = sum(human) / len(human)
        stats[kind] = score_stats(human, [_on_scale(s, scale) for _, s, _ in ok], scale)
        if calibration is not None:
            stats[f"{kind}, calibrated"] = score_stats(human, [calibration(s) for _, s, _ in ok], scale)
        stats["mean baseline"] = score_stats(human, [mean] * len(human), scale)
        stats["tf-idf baseline"] = score_stats(human, [_on_scale(100 * c, scale) for _, _, c in ok], scale)
    elif ok:
        gold = [_two_way(r.label or "") for r, _, _ in ok]
        majority = Counter(gold).most_common(1)[0][0]
        stats[kind] = label_stats(gold, ["correct" if s >= label_threshold else "incorrect" for _, s, _ in ok],
                                  [s for _, s, _ in ok])
        stats["majority baseline"] = label_stats(gold, [majority] * len(gold), [0.0] * len(gold))
        stats["tf-idf baseline"] = label_stats(
            gold, ["correct" if 100 * c >= label_threshold else "incorrect" for _, _, c in ok], [c for _, _, c in ok])
    return EvalResult(dataset=dataset, rows=len(rows), graded=len(ok), grader=kind, model=getattr(grader, "model", ""),
                      scale=scale if not labelled else None, label_threshold=label_threshold, rubrics=len(rubrics),
                      seconds=round(time.perf_counter() - started, 3), metrics=stats, errors=errors,
                      predictions=predictions, calibration=calibration.source if calibration is not None else None)


def fit_result_calibration(result: EvalResult, *, source: str = "") -> Calibration:
    """An isotonic map from the run's 0-100 scores to its human scores (graded rows only)."""
    from .calibration import fit_isotonic

    if result.scale is None:
        raise UsageError("calibration maps scores onto a numeric scale: this dataset has labels, not scores")
    done = [p for p in result.predictions if p.get("outcome") == "graded"]
    return fit_isotonic([p["score"] for p in done], [p["human"] for p in done], source=source or result.dataset,
                        scale=result.scale, data="human-scores")


def evaluate(path: str | Path, *, settings: Settings | None = None, scale: str | tuple[float, float] | None = None,
             limit: int | None = None, sample: int | None = None, seed: int = 0, **kwargs: Any) -> EvalResult:
    """Grade a human-graded CSV and compare with the human grades.

    >>> res = evaluate("mohler-dev.csv", scale="0-5", grader_kind="offline")  # doctest: +SKIP
    >>> res.metrics["offline"]["pearson"]  # doctest: +SKIP
    """
    from ..config import load_settings

    settings = settings or load_settings()
    scale_t = parse_scale(scale) if isinstance(scale, str) else scale
    rows = select_rows(read_dataset(path, scale=scale_t), limit=limit, sample=sample, seed=seed)
    return asyncio.run(aevaluate(rows, settings=settings, scale=scale_t, dataset=str(path), **kwargs))


PREDICTION_FIELDS = ["row", "id", "outcome", "human", "score", "band", "predicted", "calibrated", "tfidf_cosine", "error"]


def is_predictions(head: bytes) -> bool:
    """Whether a file's start is one `write_predictions` wrote (CSV header or JSON line)."""
    from .predictions import is_rows_file

    return is_rows_file(head, PREDICTION_FIELDS, "row")


def write_predictions(result: EvalResult, path: str | Path, *, inputs: Any = ()) -> Path:
    """Per-row predictions: CSV when the name ends in .csv, else JSON lines (see predictions.write_rows)."""
    from .predictions import write_rows

    return write_rows(path, PREDICTION_FIELDS, result.predictions, "row", inputs=inputs)

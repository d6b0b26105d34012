"""mlgrade measured against a reviewer's decisions (`mlgrade eval RESULTS --reviews R`).

The reviewer plays the expert: each decision's score and band become an expert row, the
results line's grade is the grader's, and the metrics are exactly those of any expert-graded
set (evaluation.expert: band accuracy, confusion, Spearman, MAE…). The pairs come from
`mlgrade.batch.reviews.reviewed_pairs`, as plain dicts, so this module needs nothing from batch.

>>> from mlgrade.batch.reviews import reviewed_pairs
>>> from mlgrade.evaluation.reviewed import review_agreement
>>> result = review_agreement(reviewed_pairs("results.jsonl"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import metrics
from .expert import ExpertResult, ExpertRow, _r, result_from_pairs
from ..models import Grade

FLAGGED, NOT_FLAGGED = "flagged for review", "not flagged"


def review_agreement(pairs: Sequence[dict[str, Any]], *, dataset: str = "") -> ExpertResult:
    """Agreement of mlgrade's grades with the reviewer's. Decisions that give a band without a
    score count in `band_only` (band agreement) and in no score statistic: no score is invented."""
    scored: list[tuple[ExpertRow, Grade]] = []
    band_only: list[tuple[str, str]] = []
    graders: set[str] = set()
    for i, p in enumerate(pairs, start=1):
        grade = Grade(question_id=p.get("question_id") or "?", outcome="graded", score=p["mlgrade_score"],
                      band=p["mlgrade_band"], grader=p.get("grader") or "")
        graders.add(grade.grader)
        if p.get("reviewer_score") is None:
            band_only.append((p["reviewer_band"], p["mlgrade_band"]))
            continue
        scored.append((ExpertRow(line=i, question_id=grade.question_id, answer="", expert_score=float(p["reviewer_score"]),
                                 expected_band=p["reviewer_band"], kind=FLAGGED if p.get("needed") else NOT_FLAGGED,
                                 answer_id=str(p.get("id") or "")), grade))
    result = result_from_pairs(scored, dataset=dataset, grader=", ".join(sorted(g for g in graders if g)) or "?")
    m = result.metrics
    for key in ("misconception_recall", "false_flags", "injection"):  # a decision carries no must_flag labels
        m.pop(key, None)
    m["decisions"] = len(pairs)
    m["band_only"] = {"n": len(band_only),
                      "band_accuracy": _r(metrics.accuracy([a for a, _ in band_only], [b for _, b in band_only]))
                      if band_only else None}
    m["overridden"] = {label: _override_rate([p for p in pairs if bool(p.get("needed")) == flag])
                       for label, flag in ((FLAGGED, True), (NOT_FLAGGED, False))}
    m["stale"] = sum(bool(p.get("stale")) for p in pairs)
    result.rows = len(pairs)
    result.graded = len(pairs)
    result.model = ""
    return result


def _override_rate(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    changed = sum(p.get("decision") == "override" and p.get("reviewer_band") != p.get("mlgrade_band") for p in pairs)
    return {"n": len(pairs), "band_changed": changed, "rate": _r(changed / len(pairs)) if pairs else None}

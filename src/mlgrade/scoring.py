"""The score is arithmetic over judgments, done here and nowhere else.

Pure functions, no I/O: the model (or the offline grader) decides *what* an answer covers;
this module decides what that is worth.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import Judgment, MisconceptionFound, Rubric

CREDIT = {"covered": 1.0, "partial": 0.5, "missing": 0.0}
ESSENTIAL_CAP = 59.0
# A misconception the grader names that the rubric does not list: a small, fixed penalty,
# because its severity has not been reviewed by a person.
NEW_MISCONCEPTION_PENALTY = 5.0
BANDS = ((80.0, "strong"), (60.0, "adequate"), (30.0, "weak"), (0.0, "poor"))


@dataclass(frozen=True)
class ScoreBreakdown:
    score: float
    band: str
    coverage: float  # weighted key-point coverage, 0–100, before penalties and cap
    penalty: float
    capped: bool  # an essential point was missing and the cap lowered the score


def band_for(score: float) -> str:
    for threshold, name in BANDS:
        if score >= threshold:
            return name
    return "poor"


def misconception_penalty(rubric: Rubric, found: MisconceptionFound) -> float:
    """Penalty for one detected misconception: the rubric's figure, or the default for new ones.
    Unverified evidence carries no penalty: we do not punish what we cannot point to."""
    if not found.verified:
        return 0.0
    known = rubric.misconception(found.id)
    return known.penalty if known else NEW_MISCONCEPTION_PENALTY


def compute_score(rubric: Rubric, judgments: list[Judgment], misconceptions: list[MisconceptionFound]) -> ScoreBreakdown:
    status = {j.key_point: j.status for j in judgments}
    total = sum(kp.weight for kp in rubric.key_points)
    earned = sum(kp.weight * CREDIT[status.get(kp.id, "missing")] for kp in rubric.key_points)
    coverage = 100.0 * earned / total

    seen: set[str] = set()
    penalty = 0.0
    for m in misconceptions:
        if m.id in seen:
            continue
        seen.add(m.id)
        penalty += misconception_penalty(rubric, m)

    score = coverage - penalty
    essential_missing = any(kp.essential and status.get(kp.id, "missing") == "missing" for kp in rubric.key_points)
    capped = essential_missing and score > ESSENTIAL_CAP
    if capped:
        score = ESSENTIAL_CAP
    score = round(min(100.0, max(0.0, score)), 1)
    return ScoreBreakdown(score=score, band=band_for(score), coverage=round(coverage, 1), penalty=penalty, capped=capped)

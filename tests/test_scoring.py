"""Score arithmetic, table-driven: weighted coverage (partial = half), misconception penalties,
the essential-point cap, clamping to 0–100 and the bands."""

from __future__ import annotations

import pytest

from mlgrade.models import Judgment, MisconceptionFound, Rubric
from mlgrade.scoring import ESSENTIAL_CAP, NEW_MISCONCEPTION_PENALTY, band_for, compute_score

# key points: core (weight 3, essential), detail (2), extra (1); total weight 6
RUBRIC = Rubric.model_validate({
    "id": "t1", "number": 0, "section": "basic", "kind": "concept", "difficulty": "easy",
    "question": "q?", "model_answer": "a.",
    "key_points": [
        {"id": "core", "point": "the core idea", "weight": 3, "essential": True},
        {"id": "detail", "point": "a detail", "weight": 2},
        {"id": "extra", "point": "an extra", "weight": 1},
    ],
    "misconceptions": [
        {"id": "small", "claim": "a small error", "penalty": 10},
        {"id": "big", "claim": "a big error", "penalty": 30},
    ],
})
# an essential point of low weight, so the cap is what decides the score
CAPPED = Rubric.model_validate({
    "id": "t2", "number": 0, "section": "basic", "kind": "concept", "difficulty": "easy",
    "question": "q?", "model_answer": "a.",
    "key_points": [
        {"id": "must", "point": "must say", "weight": 1, "essential": True},
        {"id": "rest", "point": "the rest", "weight": 9},
    ],
    "misconceptions": [{"id": "small", "claim": "a small error", "penalty": 10}],
})
C, P, M = "covered", "partial", "missing"


def judge(rubric, statuses):
    return [Judgment(key_point=kp.id, status=s) for kp, s in zip(rubric.key_points, statuses)]


def found(*ids, verified=True):
    return [MisconceptionFound(id=i, verified=verified) for i in ids]


CASES = [
    # (name, rubric, statuses, misconceptions, score, band, capped)
    ("all covered", RUBRIC, (C, C, C), [], 100.0, "strong", False),
    ("all missing", RUBRIC, (M, M, M), [], 0.0, "poor", False),
    ("partial is half", RUBRIC, (P, P, P), [], 50.0, "weak", False),
    ("weighted mix", RUBRIC, (C, P, M), [], 66.7, "adequate", False),
    ("essential partial is not capped", RUBRIC, (P, C, C), [], 75.0, "adequate", False),
    ("essential missing below the cap", RUBRIC, (M, C, C), [], 50.0, "weak", False),
    ("essential missing caps", CAPPED, (M, C), [], ESSENTIAL_CAP, "weak", True),
    ("cap after penalty still caps", CAPPED, (M, C), found("small"), ESSENTIAL_CAP, "weak", True),
    ("essential covered, no cap", CAPPED, (C, P), [], 55.0, "weak", False),
    ("one penalty", RUBRIC, (C, C, C), found("small"), 90.0, "strong", False),
    ("two penalties", RUBRIC, (C, C, C), found("small", "big"), 60.0, "adequate", False),
    ("same misconception twice counts once", RUBRIC, (C, C, C), found("big", "big"), 70.0, "adequate", False),
    ("unverified misconception costs nothing", RUBRIC, (C, C, C), found("big", verified=False), 100.0, "strong", False),
    ("new misconception costs the default", RUBRIC, (C, C, C), found("new-thing"), 100.0 - NEW_MISCONCEPTION_PENALTY,
     "strong", False),
    ("clamped at zero", RUBRIC, (M, P, M), found("big"), 0.0, "poor", False),
    ("rounded to one decimal", RUBRIC, (M, M, C), [], 16.7, "poor", False),
]


@pytest.mark.parametrize("name, rubric, statuses, miscs, score, band, capped", CASES, ids=[c[0] for c in CASES])
def test_score_table(name, rubric, statuses, miscs, score, band, capped):
    result = compute_score(rubric, judge(rubric, statuses), miscs)
    assert (result.score, result.band, result.capped) == (score, band, capped)


def test_absent_judgment_counts_as_missing():
    only_core = [Judgment(key_point="core", status="covered")]
    assert compute_score(RUBRIC, only_core, []).score == 50.0


def test_penalty_and_coverage_are_reported():
    result = compute_score(RUBRIC, judge(RUBRIC, (C, P, M)), found("small"))
    assert result.coverage == 66.7 and result.penalty == 10 and result.score == 56.7


@pytest.mark.parametrize("score, band", [(100, "strong"), (80, "strong"), (79.9, "adequate"), (60, "adequate"),
                                         (59.9, "weak"), (30, "weak"), (29.9, "poor"), (0, "poor")])
def test_band_boundaries(score, band):
    assert band_for(score) == band

"""Score arithmetic, table-driven: the core (best-stated essential point) worth 30 whatever its
weight, the other essential points sharing 5 and the non-essential points the rest (partial = half), misconception penalties, a central
misconception or prompt injection making the answer poor, the essential-point cap, clamping to
0–100 and the bands."""

from __future__ import annotations

import pytest

from mlgrade.models import Judgment, MisconceptionFound, Rubric
from mlgrade.scoring import (
    CENTRAL_CAP, ESSENTIAL_CAP, NEW_MISCONCEPTION_PENALTY, PROMPT_INJECTION, band_for, compute_score,
)

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
        {"id": "central", "claim": "a wrong central claim", "penalty": 15},
        {"id": "just-below", "claim": "a serious but not central error", "penalty": 14.9},
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
# only essential points: the core is scored on the full 0-100
ONLY_CORE = Rubric.model_validate({
    "id": "t3", "number": 0, "section": "basic", "kind": "concept", "difficulty": "easy",
    "question": "q?", "model_answer": "a.",
    "key_points": [
        {"id": "a", "point": "first half of the core", "weight": 2, "essential": True},
        {"id": "b", "point": "second half of the core", "weight": 1, "essential": True},
    ],
})
# two essential points: the better-stated one is the core, the other is required (cap) and worth
# EXTRA_ESSENTIAL_SHARE (5), the depth sharing 65
TWO_CORE = Rubric.model_validate({
    "id": "t4", "number": 0, "section": "basic", "kind": "concept", "difficulty": "easy",
    "question": "q?", "model_answer": "a.",
    "key_points": [
        {"id": "a", "point": "the central idea", "weight": 2, "essential": True},
        {"id": "b", "point": "a required second idea", "weight": 1, "essential": True},
        {"id": "c", "point": "depth one", "weight": 1},
        {"id": "d", "point": "depth two", "weight": 1},
    ],
})
# a rubric derived from a reference answer: weighted coverage, no authored core
DERIVED = RUBRIC.model_copy(update={"id": "t5", "score_rule": "coverage"})
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
    ("the core alone is borderline", RUBRIC, (C, M, M), [], 30.0, "weak", False),
    ("core plus some depth", RUBRIC, (C, P, M), [], 53.3, "weak", False),
    ("core plus most depth", RUBRIC, (C, C, M), [], 76.7, "adequate", False),
    ("essential partial is not capped", RUBRIC, (P, C, C), [], 85.0, "strong", False),
    ("essential missing caps", RUBRIC, (M, C, C), [], ESSENTIAL_CAP, "weak", True),
    ("essential missing below the cap", RUBRIC, (M, P, M), [], 23.3, "poor", False),
    ("light core weighs as much as a heavy one", CAPPED, (C, M), [], 30.0, "weak", False),
    ("cap on a light essential point", CAPPED, (M, C), [], ESSENTIAL_CAP, "weak", True),
    ("penalty first, then the cap", CAPPED, (M, C), found("small"), ESSENTIAL_CAP, "weak", True),
    ("penalty takes it under the cap", CAPPED, (M, P), found("small"), 25.0, "poor", False),
    ("essential covered, no cap", CAPPED, (C, P), [], 65.0, "adequate", False),
    ("second essential point: a little extra credit", TWO_CORE, (C, P, M, M), [], 32.5, "weak", False),
    ("second essential point covered: the whole extra share", TWO_CORE, (C, C, M, M), [], 35.0, "weak", False),
    ("the better-stated essential point is the core", TWO_CORE, (P, C, M, M), [], 32.5, "weak", False),
    ("second essential point missing caps", TWO_CORE, (C, M, C, C), [], ESSENTIAL_CAP, "weak", True),
    ("both essential points and half the depth", TWO_CORE, (C, C, C, M), [], 67.5, "adequate", False),
    ("one penalty", RUBRIC, (C, C, C), found("small"), 90.0, "strong", False),
    ("a penalty below the central line only subtracts", RUBRIC, (C, C, C), found("just-below"), 85.1, "strong", False),
    ("a central misconception makes it poor", RUBRIC, (C, C, C), found("central"), CENTRAL_CAP, "poor", False),
    ("two penalties, one central", RUBRIC, (C, C, C), found("small", "big"), CENTRAL_CAP, "poor", False),
    ("central and still above its cap", RUBRIC, (C, P, M), found("central"), CENTRAL_CAP, "poor", False),
    ("central below its cap keeps the lower score", RUBRIC, (C, M, M), found("central"), 15.0, "poor", False),
    ("prompt injection is a central error", RUBRIC, (C, C, C), found(PROMPT_INJECTION), CENTRAL_CAP, "poor", False),
    ("same misconception twice counts once", RUBRIC, (C, C, C), found("small", "small"), 90.0, "strong", False),
    ("unverified misconception costs nothing", RUBRIC, (C, C, C), found("big", verified=False), 100.0, "strong", False),
    ("new misconception costs the default", RUBRIC, (C, C, C), found("new-thing"), 100.0 - NEW_MISCONCEPTION_PENALTY,
     "strong", False),
    ("a new misconception adds to a known one", RUBRIC, (M, P, M), found("small", "small-2"), 8.3, "poor", False),
    ("clamped at zero, central", RUBRIC, (M, P, M), found("big"), 0.0, "poor", False),
    ("rounded to one decimal", RUBRIC, (M, M, C), [], 23.3, "poor", False),
    ("only essential points: full scale", ONLY_CORE, (C, P), [], 83.3, "strong", False),
    ("derived rubric: weighted coverage", DERIVED, (C, P, M), [], 66.7, "adequate", False),
    ("derived rubric: heaviest point missing, below the cap", DERIVED, (M, C, C), [], 50.0, "weak", False),
    ("derived rubric: central claim still poor", DERIVED, (C, C, C), found("big"), CENTRAL_CAP, "poor", False),
    ("only essential points, one missing", ONLY_CORE, (C, M), [], 59.0, "weak", True),
]


@pytest.mark.parametrize("name, rubric, statuses, miscs, score, band, capped", CASES, ids=[c[0] for c in CASES])
def test_score_table(name, rubric, statuses, miscs, score, band, capped):
    result = compute_score(rubric, judge(rubric, statuses), miscs)
    assert (result.score, result.band, result.capped) == (score, band, capped)


def test_absent_judgment_counts_as_missing():
    only_core = [Judgment(key_point="core", status="covered")]
    assert compute_score(RUBRIC, only_core, []).score == 30.0


def test_penalty_and_coverage_are_reported():
    result = compute_score(RUBRIC, judge(RUBRIC, (C, P, M)), found("small"))
    assert (result.coverage, result.penalty, result.score) == (53.3, 10, 43.3)
    assert (result.core, result.depth, result.central) == (1.0, 0.333, False)


@pytest.mark.parametrize("score, band", [(100, "strong"), (80, "strong"), (79.9, "adequate"), (60, "adequate"),
                                         (59.9, "weak"), (30, "weak"), (29.9, "poor"), (0, "poor")])
def test_band_boundaries(score, band):
    assert band_for(score) == band


def test_working_code_is_adequate_on_its_own(bank):
    from mlgrade.scoring import WORKING_CODE_FLOOR, compute_score

    rubric = bank.get("q24")
    only_code = [Judgment(key_point="correct-output", status="covered")]
    assert compute_score(rubric, only_code, []).score < WORKING_CODE_FLOOR
    floored = compute_score(rubric, only_code, [], code_passed=True)
    assert floored.score == WORKING_CODE_FLOOR and floored.band == "adequate"
    # penalties still count, and a central misconception still makes it poor
    minor = MisconceptionFound(id="invented", penalty=5.0)
    assert compute_score(rubric, only_code, [minor], code_passed=True).score == WORKING_CODE_FLOOR - 5.0
    central = MisconceptionFound(id="prompt-injection")
    assert compute_score(rubric, only_code, [central], code_passed=True).score <= 25.0
    # a rich answer is not pulled down to the floor
    everything = [Judgment(key_point=kp.id, status="covered") for kp in rubric.key_points]
    assert compute_score(rubric, everything, [], code_passed=True).score == 100.0


def test_no_floor_without_hidden_cases():
    # second review G: on a custom rubric without hidden cases, a table of the public answers
    # passed every test and got the 60 floor
    from mlgrade.models import CodeTestResult
    from mlgrade.scoring import code_passed

    public = [CodeTestResult(call=f"f({i})", status="passed", expected="1", got="1") for i in range(5)]
    assert not code_passed(public)
    hidden = CodeTestResult(call="f(9)", status="passed", expected="2", got="2", hidden=True)
    assert code_passed([*public, hidden])
    assert not code_passed([*public, hidden.model_copy(update={"status": "failed"})])


def test_code_that_fails_only_an_edge_case_is_weak_not_poor(bank):
    """Issue 23: a standard rotation loop that returns False for two empty strings passed 32 of 33
    cases and scored 15; interviewers give such an answer 45-59: the core works, an edge is missed."""
    from mlgrade.models import CodeTestResult
    from mlgrade.scoring import WORKING_CORE_FLOOR, code_core_passed, code_passed, compute_score

    rubric = bank.get("q24")
    main = [CodeTestResult(call=f"can_shift('ab{i}', 'b{i}a')", expected="True", got="True", status="passed",
                           hidden=i % 2 == 0) for i in range(4)]
    edge_fail = CodeTestResult(call="can_shift('', '')", expected="True", got="False", status="failed", edge=True)
    main_fail = main[0].model_copy(update={"status": "failed", "got": "False"})
    assert code_core_passed([*main, edge_fail]) and not code_passed([*main, edge_fail])
    assert not code_core_passed([main_fail, *main[1:], edge_fail])
    assert not code_core_passed(main)                                       # nothing failed: rule 5 proper
    assert not code_core_passed([t.model_copy(update={"hidden": False}) for t in main] + [edge_fail])  # no hidden cases
    only_core = [Judgment(key_point="correct-output", status="covered")]
    assert compute_score(rubric, only_core, []).score < WORKING_CORE_FLOOR
    floored = compute_score(rubric, only_core, [], code_core_passed=True)
    assert floored.score == WORKING_CORE_FLOOR and floored.band == "weak"
    everything = [Judgment(key_point=kp.id, status="covered") for kp in rubric.key_points]
    capped = compute_score(rubric, everything, [], code_core_passed=True)   # a failing case: not adequate yet
    assert capped.score == 59.0 and capped.capped and capped.band == "weak"

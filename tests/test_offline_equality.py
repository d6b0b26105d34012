"""The offline grader's results are pinned: 325 synthetic answers across the 25 rubrics, as graded
when tests/offline_equality.py last recorded them, must grade field for field the same now. The rubrics and the bank's vocabulary come from the fixture, so a
rubric edit elsewhere does not move this test; a change of the grader's algorithm does."""

from __future__ import annotations

import gzip
import json

import pytest

from mlgrade.graders import topicality
from mlgrade.graders.offline import OfflineGrader
from mlgrade.models import Rubric
from offline_equality import FIXTURE, VOLATILE, grade_dump


@pytest.fixture(scope="module")
def recorded():
    """The recorded grades, without the fields that are not the grader's result (VOLATILE)."""
    data = json.loads(gzip.decompress(FIXTURE.read_bytes()))
    for case in data["cases"]:
        for field in VOLATILE:
            case["grade"].pop(field, None)
    return data


def test_fixture_covers_every_rubric_and_outcome(recorded):
    assert len({c["rubric"] for c in recorded["cases"]}) == 25
    assert {c["grade"]["band"] for c in recorded["cases"]} == {"poor", "weak", "adequate", "strong"}
    assert any(c["grade"]["misconceptions"] for c in recorded["cases"])
    assert any(c["grade"]["review"]["reasons"] for c in recorded["cases"])


def test_every_grade_is_the_recorded_one(recorded, monkeypatch):
    monkeypatch.setattr(topicality, "_bank_stems", lambda: frozenset(recorded["bank_stems"]))
    rubrics = {r["id"]: Rubric.model_validate(r) for r in recorded["rubrics"]}
    grader = OfflineGrader()
    differ = []
    for case in recorded["cases"]:
        got = grade_dump(rubrics[case["rubric"]], case["answer"], grader)
        if got != case["grade"]:
            keys = sorted(k for k in set(got) | set(case["grade"]) if got.get(k) != case["grade"].get(k))
            differ.append(f"{case['rubric']} {case['answer'][:60]!r}: {', '.join(keys)}")
    assert not differ, f"{len(differ)} of {len(recorded['cases'])} grades changed:\n" + "\n".join(differ[:20])


def test_the_second_opinion_is_the_recorded_offline_score(recorded, monkeypatch):
    """The LLM path's second opinion computes only the score (no Grade, no flags): the same score
    and band as the full offline grade."""
    import mlgrade.grading as grading
    from mlgrade.grading import second_opinion

    monkeypatch.setattr(topicality, "_bank_stems", lambda: frozenset(recorded["bank_stems"]))
    monkeypatch.setattr(grading, "_offline", None)  # compiled afresh, with the recorded vocabulary
    rubrics = {r["id"]: Rubric.model_validate(r) for r in recorded["rubrics"]}
    for case in recorded["cases"][::3]:
        assert second_opinion(rubrics[case["rubric"]], case["answer"]) == {
            "grader": "offline", "score": case["grade"]["score"], "band": case["grade"]["band"]}, case["answer"][:60]


def test_a_changed_grade_is_noticed(recorded, monkeypatch):
    """The comparison is not vacuous: one recorded field altered is reported."""
    monkeypatch.setattr(topicality, "_bank_stems", lambda: frozenset(recorded["bank_stems"]))
    case = next(c for c in recorded["cases"] if c["grade"]["judgments"][0]["evidence"])
    rubric = Rubric.model_validate(next(r for r in recorded["rubrics"] if r["id"] == case["rubric"]))
    got = grade_dump(rubric, case["answer"], OfflineGrader())
    assert got == case["grade"]
    got["judgments"][0]["evidence"] = got["judgments"][0]["evidence"][:-1]
    assert got != case["grade"]

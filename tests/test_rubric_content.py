"""Rubric content, checked claim by claim with the offline grader.

`rubric_probes.yaml` holds sentences written for these tests (none come from the data sets):
for every misconception a plain statement of the wrong claim and a correction of it, for every
key point a correct paraphrase in other words, and sentences that state the opposite of a key
point or say something correct that once drew a penalty.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlgrade.graders.offline import OfflineGrader
from mlgrade.graders.textmatch import content_stems
from mlgrade.rubrics import load_rubrics

PROBES = yaml.safe_load((Path(__file__).with_name("rubric_probes.yaml")).read_text())
BANK = load_rubrics()
GRADER = OfflineGrader()


def _flags(qid: str, text: str) -> list[str]:
    return [m.id for m in GRADER.judge(BANK.get(qid), text).misconceptions]


def _status(qid: str, point: str, text: str) -> str:
    return next(j.status for j in GRADER.judge(BANK.get(qid), text).judgments if j.key_point == point)


def _cases(section: str) -> list[tuple[str, str, object]]:
    return [(qid, key, value) for qid, probes in sorted(PROBES.items())
            for key, value in (probes.get(section) or {}).items()]


def test_every_misconception_and_key_point_has_probes():
    missing = []
    for rubric in BANK:
        probes = PROBES.get(rubric.id, {})
        missing += [f"{rubric.id} misconception {m.id}" for m in rubric.misconceptions
                    if m.id not in (probes.get("misconceptions") or {})]
        missing += [f"{rubric.id} key point {kp.id}" for kp in rubric.key_points
                    if kp.id not in (probes.get("points") or {})]
    assert missing == []


def test_probes_name_real_ids():
    unknown = [f"{qid} {key}" for qid, key, _ in _cases("misconceptions") if BANK.get(qid).misconception(key) is None]
    points = {r.id: {kp.id for kp in r.key_points} for r in BANK}
    unknown += [f"{qid} {key}" for qid, key, _ in _cases("points") if key not in points[qid]]
    assert unknown == []


@pytest.mark.parametrize("qid,mid,probe", _cases("misconceptions"), ids=lambda v: v if isinstance(v, str) else "")
def test_misconception_fires_on_the_claim_and_not_on_its_correction(qid, mid, probe):
    assert mid in _flags(qid, probe["wrong"]), probe["wrong"]
    assert _flags(qid, probe["right"]) == [], probe["right"]


@pytest.mark.parametrize("qid,point,text", _cases("points"), ids=lambda v: v if isinstance(v, str) and len(v) < 40 else "")
def test_key_point_paraphrase_earns_credit(qid, point, text):
    assert _status(qid, point, text) in ("covered", "partial"), text
    assert _flags(qid, text) == [], text


@pytest.mark.parametrize("qid,point,text", _cases("points"), ids=lambda v: v if isinstance(v, str) and len(v) < 40 else "")
def test_paraphrase_is_in_other_words(qid, point, text):
    """The paraphrase must not just repeat the key point: most of its words are its own."""
    kp = next(k for k in BANK.get(qid).key_points if k.id == point)
    mine, theirs = set(content_stems(text)), set(content_stems(kp.point))
    assert len(mine & theirs) <= 0.6 * len(mine), sorted(mine & theirs)


@pytest.mark.parametrize("qid,point,texts", _cases("opposite"), ids=lambda v: v if isinstance(v, str) else "")
def test_the_opposite_of_a_key_point_earns_nothing(qid, point, texts):
    for text in texts:
        assert _status(qid, point, text) == "missing", text


@pytest.mark.parametrize("qid,_,texts", _cases("correct"), ids=lambda v: v if isinstance(v, str) else "")
def test_correct_statements_draw_no_penalty(qid, _, texts):
    for text in texts:
        assert _flags(qid, text) == [], text


def test_every_misconception_cue_can_fire():
    """No dead cues: each cue, said plainly as a sentence of its own, is an assertion of its claim."""
    dead = []
    for rubric in BANK:
        for m in rubric.misconceptions:
            dead += [f"{rubric.id} {m.id}: {cue!r}" for cue in m.cues
                     if m.id not in _flags(rubric.id, f"In my view {cue}.")]
    assert dead == []


def test_flagged_misconceptions_survive_evidence_checks_and_cost_points():
    """Through the whole pipeline (evidence verified, score computed), each plain wrong claim
    keeps its verified evidence and its penalty."""
    from mlgrade.grading import finalize

    lost = []
    for qid, mid, probe in _cases("misconceptions"):
        rubric = BANK.get(qid)
        grade = finalize(rubric, probe["wrong"], GRADER.judge(rubric, probe["wrong"]), grader="offline")
        found = {m.id: m for m in grade.misconceptions}
        if mid not in found or not found[mid].verified or found[mid].penalty <= 0:
            lost.append(f"{qid} {mid}")
    assert lost == []

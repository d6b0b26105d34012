"""A scripted judge for the fake endpoint that reproduces a known agreement with the experts on
the built-in answers: for each answer it replies with key-point statuses whose score (computed
by mlgrade's own scoring) lands in the experts' band, except for chosen answers, deliberately
put two or more bands away. Band accuracy is then exactly (N - misses) / N."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from fake_openai_server import _answer_of

from mlgrade.evidence import quote_found
from mlgrade.graders.prompts import neutralise
from mlgrade.models import Judgment, Rubric
from mlgrade.injection_scan import find_injections, mask_injections
from mlgrade.scoring import compute_score


def _quote(answer: str) -> str:
    """A sentence of the answer outside any text aimed at the grader (so it is credited)."""
    masked = mask_injections(answer, find_injections(answer))
    pieces = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", answer) if len(s.strip()) >= 12]
    pieces += [answer[i:i + 40] for i in range(0, max(1, len(answer) - 40), 20)]
    for p in pieces:
        if quote_found(p, masked):
            return p
    raise AssertionError(f"no creditable quote in {answer[:60]!r}")


def statuses_for(rubric: Rubric, answer: str, band: str) -> dict[str, str]:
    """Key-point statuses whose computed score is in `band` (no misconceptions)."""
    points = rubric.key_points
    orders = [sorted(points, key=lambda kp: not kp.essential), sorted(points, key=lambda kp: kp.essential)]
    for order in orders:
        for tail in ("missing", "partial"):
            for k in range(len(order) + 1):
                st = {kp.id: ("covered" if i < k else tail) for i, kp in enumerate(order)}
                judgments = [Judgment(key_point=kp.id, status=st[kp.id], evidence="x", verified=True) for kp in points]
                if compute_score(rubric, judgments, []).band == band:
                    return st
    raise AssertionError(f"{rubric.id}: band {band} not reachable")


def far_band(band: str) -> str:
    """At least two bands away, so a miss is outside "within one band" too."""
    return "strong" if band in ("poor", "weak") else "poor"


def scripted_judge(rows: Iterable[Any], bank: Any, misses: Iterable[str] = ()) -> Any:
    """A responder for FakeOpenAIServer: rows are built-in ExpertRows; answers whose answer_id is
    in `misses` get a far band."""
    missed = set(misses)
    replies: dict[str, str] = {}
    for r in rows:
        rubric = bank.get(r.question_id)
        band = far_band(r.expected_band) if r.answer_id in missed else r.expected_band
        st = statuses_for(rubric, r.answer, band)
        quote = _quote(r.answer) if any(s != "missing" for s in st.values()) else ""
        reply = {"key_points": {kp: {"status": s, "evidence": quote if s != "missing" else "",
                                     "comment": "As the experts see it."} for kp, s in st.items()},
                 "misconceptions": [], "strengths": ["Scripted."], "improvements": ["Scripted."],
                 "follow_up": "What would you check next?"}
        replies[neutralise(r.answer)] = json.dumps(reply)

    def respond(body: dict[str, Any]) -> str:
        return replies[_answer_of(body)]

    return respond



class ScriptedGrader:
    """A grader (no network) with the same known agreement, for the offline side of a run."""

    def __init__(self, rows: Iterable[Any], misses: Iterable[str] = (), *, name: str = "offline", model: str = ""):
        self.name, self.model = name, model
        missed = set(misses)
        self._plan = {r.answer: far_band(r.expected_band) if r.answer_id in missed else r.expected_band for r in rows}

    async def assess(self, rubric: Rubric, answer: str, *, facts: Any = None) -> Any:
        from mlgrade.models import Assessment

        st = statuses_for(rubric, answer, self._plan[answer])
        quote = _quote(answer) if any(s != "missing" for s in st.values()) else ""
        return Assessment(judgments=[Judgment(key_point=k, status=s, evidence=quote if s != "missing" else "")
                                     for k, s in st.items()], model=self.model, prompt_hash="scripted")

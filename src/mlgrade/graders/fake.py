"""A scripted grader for tests and demos: no network, fully predictable.

`FakeGrader(statuses={"kp-id": "covered"})` judges those points with evidence taken from the
answer itself (its first sentence) so they verify; every other point is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import GraderFailure
from ..models import Assessment, CodeTestResult, Judgment, MisconceptionFound, Rubric


@dataclass
class FakeGrader:
    statuses: dict[str, str] = field(default_factory=dict)
    default_status: str = "missing"
    misconceptions: list[MisconceptionFound] = field(default_factory=list)
    fail_with: str | None = None
    name: str = "fake"
    model: str = "fake-model"
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def assess(self, rubric: Rubric, answer: str, *, facts: list[CodeTestResult] | None = None) -> Assessment:
        self.calls.append((rubric.id, answer))
        if self.fail_with:
            raise GraderFailure(self.fail_with, raw_reply="{not json", attempts=3)
        quote = answer.strip().split("\n")[0][:80]
        judgments = []
        for kp in rubric.key_points:
            status = self.statuses.get(kp.id, self.default_status)
            judgments.append(Judgment(key_point=kp.id, status=status, evidence="" if status == "missing" else quote,
                                      comment=f"fake: {status}"))
        missed = [kp.point for kp in rubric.key_points if self.statuses.get(kp.id, self.default_status) != "covered"]
        return Assessment(judgments=judgments, misconceptions=list(self.misconceptions),
                          strengths=["fake strength"], improvements=missed[:3],
                          follow_up=rubric.follow_ups[0].question if rubric.follow_ups else "", model=self.model,
                          prompt_hash="fake")

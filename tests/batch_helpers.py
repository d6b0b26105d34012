"""Test-only graders for the batch engine: latency, in-flight counting, scripted failures."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

from mlgrade.errors import GraderFailure
from mlgrade.graders.fake import FakeGrader


@dataclass
class RetryEvent:
    kind: str
    wait_s: float | None = None


@dataclass
class SlowGrader(FakeGrader):
    """A FakeGrader that takes `latency` seconds and counts how many calls overlap."""

    latency: float = 0.01
    in_flight: int = 0
    peak: int = 0
    fail_answers: set[str] = field(default_factory=set)
    on_retry: object = None
    rate_limit_first: int = 0  # the first N calls report a 429 (through on_retry) before succeeding

    async def assess(self, rubric, answer, *, facts=None):
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.rate_limit_first > 0:
                self.rate_limit_first -= 1
                if self.on_retry is not None:
                    self.on_retry(RetryEvent("rate_limit", 0.05))
                await asyncio.sleep(0.05)
            await asyncio.sleep(self.latency)
            if answer in self.fail_answers:
                raise GraderFailure("reply failed validation", raw_reply="{bad", attempts=3)
            return await super().assess(rubric, answer, facts=facts)
        finally:
            self.in_flight -= 1


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_out(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def answers(n: int, qids: tuple[str, ...] = ("q01", "q07", "q05")) -> list[dict]:
    return [{"id": f"a{i:05d}", "question_id": qids[i % len(qids)], "answer": f"Answer number {i}. It is fine.",
             "candidate": f"c{i % 4}"} for i in range(n)]

"""Which questions a mock interview asks: a mix across sections, weighted towards the candidate's
weak areas from history (unless `fresh`), repeatable with a seed.

The draw is a pure function of the bank, the history given and the random generator, so
`--seed S` draws the same questions again for the same history (and always with `fresh`).
"""

from __future__ import annotations

import random as _random
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..rubrics import RubricBank
    from .history import Attempt


@dataclass(frozen=True)
class Drawn:
    question_id: str
    reason: str  # shown to the candidate only in the report: why this question was asked


def _latest_scores(attempts: list[Attempt]) -> dict[str, float]:
    latest: dict[str, float] = {}
    for a in sorted(attempts, key=lambda a: a.id):
        if a.outcome == "graded" and a.score is not None and a.kind == "main":
            latest[a.question_id] = a.score
    return latest


def weights(bank: RubricBank, attempts: list[Attempt], ids: list[str]) -> dict[str, tuple[float, str]]:
    """Each question's weight in the draw and the reason for it. A question never answered weighs 1
    (plus its section's weakness); one answered weighs more the lower its latest score (up to 3);
    a section's weakness (its mean latest score under 100, up to +1) lifts every question in it."""
    latest = _latest_scores(attempts)
    by_section: dict[str, list[float]] = {}
    for qid, score in latest.items():
        if qid in bank.rubrics:
            by_section.setdefault(bank.rubrics[qid].section, []).append(score)
    section_mean = {s: statistics.fmean(v) for s, v in by_section.items()}
    out: dict[str, tuple[float, str]] = {}
    for qid in ids:
        section = bank.rubrics[qid].section
        lift = (100 - section_mean[section]) / 100 if section in section_mean else 0.0
        if qid in latest:
            weight = 1 + 2 * (100 - max(0.0, min(100.0, latest[qid]))) / 100 + lift
            reason = f"your last score here was {latest[qid]:g}"
        else:
            weight = 1 + lift
            reason = "never answered"
        if section in section_mean and section_mean[section] < 60:
            reason += f"; a weak area ({section}, mean {section_mean[section]:.0f})"
        out[qid] = (weight, reason)
    return out


def draw(bank: RubricBank, attempts: list[Attempt], *, count: int, sections: list[str] | None = None,
         fresh: bool = False, rng: _random.Random | None = None) -> list[Drawn]:
    """`count` distinct questions (fewer when the sections hold fewer). Sections take turns, so a
    five-question draw over six sections asks five different sections, the weaker ones more likely;
    within a section the weights of `weights` decide. `fresh` ignores history (all weights equal)."""
    rng = rng or _random.Random()
    pool = [r.id for r in bank.rubrics.values() if not sections or r.section in sections]
    pool.sort(key=lambda q: (bank.rubrics[q].number, q))  # bank order, so a seed means one draw
    table = {q: (1.0, "drawn at random (--fresh)") for q in pool} if fresh else weights(bank, attempts, pool)
    chosen: list[Drawn] = []
    used: dict[str, int] = {}
    left = list(pool)
    while left and len(chosen) < count:
        # the sections asked least so far take their turn first: a mix, not five NLP questions
        fewest = min(used.get(bank.rubrics[q].section, 0) for q in left)
        turn = [q for q in left if used.get(bank.rubrics[q].section, 0) == fewest]
        qid = rng.choices(turn, weights=[table[q][0] for q in turn])[0]
        chosen.append(Drawn(qid, table[qid][1]))
        used[bank.rubrics[qid].section] = used.get(bank.rubrics[qid].section, 0) + 1
        left.remove(qid)
    return chosen

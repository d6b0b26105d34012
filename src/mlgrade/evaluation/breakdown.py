"""`mlgrade eval SET.jsonl --by FIELD`: an expert set's metrics broken down by one of its label
fields (kind, persona, question_number…), one line per value of the field.

Each group is measured by `expert_metrics` itself, so a group's figures are the figures the whole
set would get if it held only that group's answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..models import Grade

if TYPE_CHECKING:  # expert.py imports this module: the metrics function is passed in, not imported
    from .expert import ExpertRow

# expert.expert_metrics: (pairs, score_map) -> the figures of one set of graded rows
Metrics = Callable[[Sequence[tuple["ExpertRow", Grade]], "Callable[[float], float] | None"], dict[str, Any]]

MISSING = "(none)"  # rows without the field, or with an empty value
CLIP = 48  # characters of a value shown in the table (free-text personas run to a sentence)


def parse_fields(values: Iterable[str] | None) -> list[str]:
    """`--by kind --by persona` or `--by kind,persona`: the field names in order, once each."""
    fields: list[str] = []
    for value in values or ():
        for name in value.split(","):
            name = name.strip()
            if name and name not in fields:
                fields.append(name)
    if values and not fields:
        raise UsageError("--by needs a field name, e.g. --by kind")
    return fields


def group_key(value: Any) -> str:
    """The group a field's value puts a row in: strings as they are (trimmed), numbers as written,
    anything else (a list, an object, true/false) as its JSON text."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        return value.strip() or MISSING
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, "g") if isinstance(value, float) else str(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def check_fields(rows: Sequence[ExpertRow], fields: Sequence[str], *, where: str = "the expert set") -> None:
    """Refuse a field no row has (before any grading), naming the fields the set does have."""
    present = {k for r in rows for k in r.labels}
    for name in fields:
        if name not in present:
            have = ", ".join(sorted(present)) or "none"
            raise UsageError(f"--by {name}: no answer in {where} has a {name!r} field (fields: {have})")


def _order(key: str) -> tuple[int, float, str]:
    """Numbers in numeric order (question 2 before 10), then text; the missing group last."""
    if key == MISSING:
        return (2, 0.0, key)
    try:
        return (0, float(key), key)
    except ValueError:
        return (1, 0.0, key.lower())


def breakdown(pairs: Sequence[tuple[ExpertRow, Grade]], name: str,
              score_map: Callable[[float], float] | None = None, *, metrics: Metrics) -> list[dict[str, Any]]:
    """One line per value of field `name`: n graded, band accuracy, MAE, mean score and mean
    expert score, misconception recall (None where the group has no answer to flag)."""
    groups: dict[str, list[tuple[ExpertRow, Grade]]] = {}
    for row, grade in pairs:
        groups.setdefault(group_key(row.labels.get(name)), []).append((row, grade))
    lines = []
    for key in sorted(groups, key=_order):
        m = metrics(groups[key], score_map)
        line: dict[str, Any] = {"value": key, "rows": len(groups[key]), "n": m["n"]}
        if m["n"]:
            done = [(r, g.score) for r, g in groups[key] if g.ok and g.score is not None]
            scores = [score_map(s) if score_map else s for _, s in done]
            line.update(band_accuracy=m["band_accuracy"], mae=m["mae"],
                        mean_score=round(sum(scores) / len(scores), 1),
                        mean_expert=round(sum(r.expert_score for r, _ in done) / len(done), 1),
                        misconception_recall=m["misconception_recall"])
        else:
            line.update(band_accuracy=None, mae=None, mean_score=None, mean_expert=None,
                        misconception_recall={"n": 0, "flagged": 0, "recall": None})
        lines.append(line)
    return lines


def breakdowns(pairs: Sequence[tuple[ExpertRow, Grade]], fields: Sequence[str],
               score_map: Callable[[float], float] | None = None, *, metrics: Metrics) -> dict[str, list[dict[str, Any]]]:
    """`breakdown` for each field, after checking every field exists in the set."""
    check_fields([r for r, _ in pairs], fields)
    return {name: breakdown(pairs, name, score_map, metrics=metrics) for name in fields}


def clip(text: str, width: int = CLIP) -> str:
    """A long free-text value cut to `width` characters with an ellipsis (the JSON keeps it whole)."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"

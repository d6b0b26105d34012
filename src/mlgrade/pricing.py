"""Cost estimates from the prices table in prices.json (one file, easy to update)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from .models import Rubric, Usage

BATCH_DISCOUNT = 0.5  # the OpenAI Batch API bills half the online price


@lru_cache(maxsize=1)
def prices() -> dict[str, dict[str, float]]:
    data = json.loads((resources.files("mlgrade") / "prices.json").read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


def price_for(model: str) -> dict[str, float] | None:
    table = prices()
    if model in table:
        return table[model]
    # dated snapshots ("gpt-4.1-mini-2025-04-14") price like their family: longest prefix wins
    matches = [k for k in table if model.startswith(k)]
    return table[max(matches, key=len)] if matches else None


def grading_tokens(rubric: Rubric, answers: int, answer_chars: int) -> Usage:
    """Rough tokens for grading `answers` answers (`answer_chars` characters in all) against one
    rubric with the LLM: ~4 characters a token, ~60 output tokens a key point."""
    # the grading prompt shows only each follow-up's question, not its own key points, and no cues
    # (they are the offline grader's: prompts.rubric_block)
    no_cues = {"__all__": {"cues"}}
    shown = {**rubric.model_dump(mode="json", exclude={"key_points": no_cues, "misconceptions": no_cues}),
             "follow_ups": [f.question for f in rubric.follow_ups]}
    prefix_chars = len(json.dumps(shown, ensure_ascii=False)) + 2500  # + system prompt
    return Usage(input_tokens=(answers * prefix_chars + answer_chars) // 4,
                 output_tokens=answers * (120 + 60 * len(rubric.key_points)))


def estimate_cost(model: str, usage: Usage, *, batch: bool = False) -> float | None:
    """USD for one call's usage, or None when the model's price is unknown (local models)."""
    price = price_for(model)
    if price is None:
        return None
    uncached = max(0, usage.input_tokens - usage.cached_tokens)
    cost = (uncached * price["input"] + usage.cached_tokens * price.get("cached_input", price["input"])
            + usage.output_tokens * price["output"]) / 1_000_000
    return round(cost * (BATCH_DISCOUNT if batch else 1.0), 8)

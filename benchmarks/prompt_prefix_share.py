"""How much of each grading request is the static, cacheable prefix?

For every question, builds the real request (LLMGrader.build_request, json_schema mode) for two
answers — the rubric's own model answer (a long, strong answer) and its first sentence (a short
one) — and reports static tokens / total prompt tokens. Static = the system message (instructions
+ rubric) plus the response schema, identical for every answer to the question; dynamic = the user
message (facts, nonce-delimited answer). Providers cache identical prefixes (OpenAI from 1,024
tokens), so the share is roughly what prompt caching can bill at the cached rate.

Tokens: tiktoken's o200k_base when it is installed and its data is available locally, otherwise
a rough len(text)/4. No network, no key.

    python benchmarks/prompt_prefix_share.py [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable


def tokenizer() -> tuple[str, Callable[[str], int]]:
    try:
        import tiktoken

        enc = tiktoken.get_encoding("o200k_base")
        return "tiktoken o200k_base", lambda text: len(enc.encode(text))
    except Exception:  # not installed, or its data cannot be fetched offline
        return "len/4 (rough)", lambda text: max(1, round(len(text) / 4))


def measure() -> dict:
    from mlgrade.config import load_settings
    from mlgrade.graders.llm import LLMGrader
    from mlgrade.rubrics import load_rubrics

    name, count = tokenizer()
    settings = load_settings(base_url="http://127.0.0.1:9/v1", model="gpt-4.1-mini", grader="llm")
    grader = LLMGrader(settings, store=_NoStore())
    rows = []
    for rubric in load_rubrics():
        long_answer = rubric.model_answer.strip()
        short_answer = long_answer.split(". ")[0] + "."
        row = {"id": rubric.id}
        for label, answer in (("long", long_answer), ("short", short_answer)):
            body = grader.build_request(rubric, answer)
            system = body["messages"][0]["content"]
            schema = json.dumps(body["response_format"], separators=(",", ":"))
            user = body["messages"][1]["content"]
            static = count(system) + count(schema)
            total = static + count(user)
            row[f"static_{label}"] = static
            row[f"total_{label}"] = total
            row[f"share_{label}"] = round(static / total, 3)
        rows.append(row)
    return {"tokenizer": name, "rows": rows,
            "median_share_long": statistics.median(r["share_long"] for r in rows),
            "median_share_short": statistics.median(r["share_short"] for r in rows),
            "min_share_long": min(r["share_long"] for r in rows),
            "median_static_tokens": statistics.median(r["static_long"] for r in rows)}


class _NoStore:
    """Capabilities are not needed to build requests; keep the benchmark off the user's store."""

    def capabilities_get(self, *a):  # noqa: ANN002
        return None

    def capabilities_put(self, *a):  # noqa: ANN002
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = measure()
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    print(f"tokenizer: {result['tokenizer']}")
    print(f"{'id':<5} {'static':>7} {'total(long)':>12} {'share':>6}   {'total(short)':>12} {'share':>6}")
    for r in result["rows"]:
        print(f"{r['id']:<5} {r['static_long']:>7} {r['total_long']:>12} {r['share_long']:>6.1%}   "
              f"{r['total_short']:>12} {r['share_short']:>6.1%}")
    print(f"median static prefix: {result['median_static_tokens']:.0f} tokens; share of prompt: "
          f"{result['median_share_long']:.1%} with a long answer (min {result['min_share_long']:.1%}), "
          f"{result['median_share_short']:.1%} with a one-sentence answer")


if __name__ == "__main__":
    main()

"""Prompt text: named `{{slot}}` templates from prompts/, filled by pure functions.

The templates hold the wording, this module only fills slots; nothing here talks to the
network. Layout matters for providers' prompt caching: the system message (instructions +
rubric) is identical for every answer to one question, and everything that depends on the
answer (code-run facts, the answer itself, the random nonce) lives in the user message.
"""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from typing import TYPE_CHECKING

from ..rubrics import prompts_dir

if TYPE_CHECKING:
    from ..models import CodeTestResult, Rubric

_SLOT = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
# Anything that could pass for our answer markers: <answer-…>, </answer…>, with stray spaces.
_MARKER_LOOKALIKE = re.compile(r"<(\s*/?\s*answer\b[^<>\n]{0,80})>", re.IGNORECASE)
FACT_VALUE_CHARS = 200


class TemplateError(ValueError):
    pass


@lru_cache(maxsize=None)
def load_template(name: str) -> str:
    """The text of prompts/<name> (shipped in the wheel, or the repo's folder in a checkout)."""
    return (prompts_dir() / name).read_text(encoding="utf-8")


def slots_of(template: str) -> set[str]:
    return set(_SLOT.findall(template))


def render(template: str, **values: str) -> str:
    """Fill every `{{name}}` in one pass. Inserted text is never re-scanned, so an answer that
    contains `{{rubric}}` stays literal. A missing or an unused value is an error: templates
    and code must agree exactly."""
    wanted = slots_of(template)
    missing = wanted - values.keys()
    extra = values.keys() - wanted
    if missing or extra:
        raise TemplateError(f"template slots do not match: missing {sorted(missing)}, unused {sorted(extra)}")
    return _SLOT.sub(lambda m: values[m.group(1)], template)


def new_nonce() -> str:
    """16 hex digits from the OS's CSPRNG: an answer cannot guess its own closing marker."""
    return secrets.token_hex(8)


def neutralise(text: str) -> str:
    """Defang marker look-alikes (`</answer-…>`, `<answer>`) so no text can close the answer
    block early; the angle brackets become look-alike guillemets, the words stay readable."""
    return _MARKER_LOOKALIKE.sub(lambda m: f"‹{m.group(1)}›", text)


def rubric_block(rubric: Rubric) -> str:
    """The rubric as the model reads it. Cues are left out on purpose: they are for the offline
    grader, and showing them to the model would reward keyword lists."""
    lines = [f"## Question {rubric.id} ({rubric.section}, {rubric.kind}, {rubric.difficulty})", rubric.question.strip(), "",
             "## Reference answer", rubric.model_answer.strip(), ""]
    if rubric.kind == "coding" and rubric.function:
        lines += [f"The answer is expected to define a Python function `{rubric.function}`.", ""]
    lines.append("## Key points (judge each one; the id is the key in your reply)")
    for kp in rubric.key_points:
        lines.append(f"- `{kp.id}`{' (essential)' if kp.essential else ''}: {kp.point.strip()}")
    if rubric.misconceptions:
        lines += ["", "## Known misconceptions (flag only when the answer asserts one)"]
        lines += [f"- `{m.id}`: {m.claim.strip()}" for m in rubric.misconceptions]
    if rubric.errata:
        lines += ["", "## Corrections to a common source (the correction is right)"]
        lines += [f"- The source says: {e.article_says.strip()} Correct: {e.correction.strip()}" for e in rubric.errata]
    if rubric.follow_ups:
        lines += ["", "## Follow-up questions you may adapt"]
        lines += [f"- {f.strip()}" for f in rubric.follow_ups]
    return "\n".join(lines)


def _short(text: str) -> str:
    text = neutralise(text.replace("\n", " ").strip())
    return text if len(text) <= FACT_VALUE_CHARS else text[:FACT_VALUE_CHARS] + "…"


def facts_block(facts: list[CodeTestResult] | None) -> str:
    """Results of running the candidate's code, as facts for the model (empty when none).
    Values printed by candidate code are untrusted too: neutralised and truncated."""
    if not facts:
        return ""
    passed = sum(f.status == "passed" for f in facts)
    lines = [f"Facts: mlgrade ran the function in the answer against the rubric's tests ({passed}/{len(facts)} passed). "
             "Treat these results as reliable; judge correctness from them, not from how the code looks."]
    for f in facts:
        detail = ""
        if f.status == "failed":
            detail = f": expected {_short(f.expected)}, got {_short(f.got)}"
        elif f.error:
            detail = f": {_short(f.error)}"
        lines.append(f"- `{_short(f.call)}` {f.status}{detail}")
    return "\n".join(lines) + "\n\n"


def system_prompt(rubric: Rubric) -> str:
    """The static prefix: identical bytes for every answer to the same question. Memoised by the
    rubric's content hash: batch asks for it once per answer."""
    from ..rubrics import rubric_hash

    key = rubric_hash(rubric)
    text = _SYSTEM_PROMPTS.get(key)
    if text is None:
        if len(_SYSTEM_PROMPTS) > 256:
            _SYSTEM_PROMPTS.clear()
        text = _SYSTEM_PROMPTS[key] = render(load_template("grade.system.md"), rubric=rubric_block(rubric))
    return text


_SYSTEM_PROMPTS: dict[str, str] = {}


def user_prompt(answer: str, *, nonce: str, facts: list[CodeTestResult] | None = None) -> str:
    return render(load_template("grade.user.md"), facts=facts_block(facts), nonce=nonce, answer=neutralise(answer))


def grading_messages(rubric: Rubric, answer: str, *, nonce: str | None = None,
                     facts: list[CodeTestResult] | None = None) -> list[dict[str, str]]:
    return [{"role": "system", "content": system_prompt(rubric)},
            {"role": "user", "content": user_prompt(answer, nonce=nonce or new_nonce(), facts=facts)}]

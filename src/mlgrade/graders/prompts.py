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

from ..review import not_verified_reason
from ..rubrics import prompts_dir

if TYPE_CHECKING:
    from ..models import CodeTestResult, Rubric

_SLOT = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
# Anything that could pass for our markers: <answer-…>, </run-output…>, with stray spaces.
_MARKER_LOOKALIKE = re.compile(r"<(\s*/?\s*(?:answer|run-output)\b[^<>\n]{0,80})>", re.IGNORECASE)
FACT_VALUE_CHARS = 200
MAX_FAILING_SHOWN = 10  # failing cases listed in the prompt; the counts cover all of them


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
    lines += _judged(rubric, rubric, "the answer")
    if rubric.follow_ups:
        lines += ["", "## Follow-up questions (your follow-up is one of these, copied verbatim)"]
        lines += [f"- {f.question.strip()}" for f in rubric.follow_ups]
    return "\n".join(lines)


def _judged(view: Rubric, rubric: Rubric, what: str) -> list[str]:
    """The key points and misconceptions of `view`, then the errata of `rubric`, as listed to the model."""
    lines = [f"- `{kp.id}`{' (essential)' if kp.essential else ''}: {kp.point.strip()}" for kp in view.key_points]
    if view.misconceptions:
        lines += ["", f"## Known misconceptions (flag only when {what} asserts one)"]
        lines += [f"- `{m.id}`: {m.claim.strip()}" for m in view.misconceptions]
    if rubric.errata:
        lines += ["", "## Corrections to a common source (the correction is right)"]
        lines += [f"- The source says: {e.article_says.strip()} Correct: {e.correction.strip()}" for e in rubric.errata]
    return lines


def _short(text: str) -> str:
    text = neutralise(text.replace("\n", " ").strip())
    return text if len(text) <= FACT_VALUE_CHARS else text[:FACT_VALUE_CHARS] + "…"


def facts_block(facts: list[CodeTestResult] | None, nonce: str = "") -> str:
    """Results of running the candidate's code (empty when none), in two parts. The facts part
    holds only what mlgrade itself made: counts, each failing case's call (from the rubric, or
    generated) and its expected value (from the rubric, or the reference solution). What the
    candidate's code produced (return values, exception messages) goes in a separate block
    delimited with the answer's nonce, as untrusted data like the answer itself."""
    if not facts:
        return ""
    if len(facts) == 1 and facts[0].call == "(answer)":
        f = facts[0]
        if (why := not_verified_reason(f)) is not None:
            # mlgrade's own words (the library's name is from its curated list), not the candidate's
            return (f"Facts: the answer's code was not run: {why}. "
                    "That says nothing against it; judge its correctness from reading it, taking the "
                    "library to behave as documented.\n\n")
        if f.status == "not-run":
            return ("Facts: the answer's code was not run (no sandbox is available on this machine). "
                    "Judge its correctness from reading it.\n\n")
        return (f"Facts: mlgrade could not run the answer's code against the tests (status: {f.status}). "
                "The reason, which may quote the candidate's code, is in the run-output block below.\n\n"
                + _run_output([f"the whole answer: {_short(f.error)}"], nonce))
    passed = sum(f.status == "passed" for f in facts)
    hidden = sum(f.hidden for f in facts)
    failing = [(i, f) for i, f in enumerate(facts, 1) if f.status != "passed"]
    lines = [f"Facts: mlgrade ran the function in the answer against {len(facts)} test cases ({len(facts) - hidden} from "
             f"the rubric, {hidden} generated at random and checked with the reference solution): {passed} passed, "
             f"{len(failing)} did not. These counts, calls and expected values are reliable; judge correctness from "
             "them, not from how the code looks."]
    untrusted = []
    for i, f in failing[:MAX_FAILING_SHOWN]:
        kind = "edge case" if f.edge else "case"
        expected = f", expected {_short(f.expected)}" if f.expected else ""
        lines.append(f"- {kind} {i}: `{_short(f.call)}`{expected}: {f.status}")
        what = f"returned {_short(f.got)}" if f.status == "failed" else _short(f.error or f.status)
        untrusted.append(f"case {i}: {what}")
    if len(failing) > MAX_FAILING_SHOWN:
        lines.append(f"- … and {len(failing) - MAX_FAILING_SHOWN} more failing cases")
    if untrusted:
        lines.append("What the candidate's code returned or raised in those cases is in the run-output block below.")
    return "\n".join(lines) + "\n\n" + (_run_output(untrusted, nonce) if untrusted else "")


def _run_output(lines: list[str], nonce: str) -> str:
    """Output of the candidate's code: data, never instructions; delimited like the answer."""
    return f"<run-output-{nonce}>\n" + "\n".join(lines) + f"\n</run-output-{nonce}>\n\n"


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
    return render(load_template("grade.user.md"), facts=facts_block(facts, nonce), nonce=nonce, answer=neutralise(answer))


def grading_messages(rubric: Rubric, answer: str, *, nonce: str | None = None,
                     facts: list[CodeTestResult] | None = None) -> list[dict[str, str]]:
    return [{"role": "system", "content": system_prompt(rubric)},
            {"role": "user", "content": user_prompt(answer, nonce=nonce or new_nonce(), facts=facts)}]


def follow_up_block(rubric: Rubric, view: Rubric) -> str:
    """The follow-up as the model reads it: the main question and its reference for context, then
    the follow-up question with its key points and misconceptions (`view`, followup.follow_up_rubric)."""
    lines = [f"## Main question {rubric.id} ({rubric.section}, {rubric.difficulty})", rubric.question.strip(), "",
             "## Reference answer to the main question", rubric.model_answer.strip(), "",
             "## The follow-up question", view.question.strip(), "",
             "## Key points of a good follow-up answer (judge each one; the id is the key in your reply)"]
    return "\n".join(lines + _judged(view, rubric, "the follow-up answer"))


def follow_up_messages(rubric: Rubric, view: Rubric, first_answer: str, answer: str, *,
                       nonce: str | None = None) -> list[dict[str, str]]:
    """Messages grading an answer to one of the rubric's follow-ups. Both of the candidate's
    answers go in the user message inside nonce markers, neutralised like a main answer."""
    nonce = nonce or new_nonce()
    system = render(load_template("followup.system.md"), rubric=follow_up_block(rubric, view))
    user = render(load_template("followup.user.md"), nonce=nonce, first_answer=neutralise(first_answer),
                  answer=neutralise(answer))
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]

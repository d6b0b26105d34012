"""Text in an answer that addresses the grader instead of the question (prompt injection).

An answer is data, never instructions; the LLM grader's prompt says so. The offline grader
cannot be instructed, but an attempt to instruct the grader is still something an interviewer
flags and marks down: the offline grader reports it as the `prompt-injection` misconception
(scoring.py treats it as a wrong central claim), and the lines it sits on earn no key-point credit.

A line counts when it has a structural marker of a fake conversation or document (a role line
like "SYSTEM:", a closing/opening tag such as </answer> or <grader_note>, "[END OF ...]", a JSON
score field, an HTML comment) or when it speaks to the grader (evaluator, grading model, "the AI")
*and* demands a score or tells it to ignore or override something.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..scoring import PROMPT_INJECTION as MISCONCEPTION_ID

CLAIM = "The answer contains instructions addressed to the grader (a prompt-injection attempt)."

_I = re.IGNORECASE | re.MULTILINE
_STRUCTURAL = [
    re.compile(r"^\s*(?:#+\s*)?(?:system|assistant|developer)\s*(?:message|prompt)?\s*:", _I),
    re.compile(r"</?\s*(?:answer|candidate[_ -]?answer|response|system|grader[\w-]*|rubric|instructions?|"
               r"evaluator[\w-]*|assistant)\s*>", _I),
    re.compile(r"\[\s*(?:end|begin|start)\s+of\s+[^\]]{0,40}\]|\[\s*(?:rubric|system)[^\]]{0,20}\]", _I),
    re.compile(r"[\"']?(?:expert_score|expected_band|grader_override|score_override)[\"']?\s*[:=]", _I),
    re.compile(r"\{\s*\"(?:score|grade|band|mark)\"\s*:\s*\d{2,3}\b", _I),
    re.compile(r"<\|im_(?:start|end)\|>|\[/?INST\]|<<\s*/?SYS\s*>>|<\|(?:system|user|assistant)\|>", _I),
    # the answer grading itself: "this answer deserves full marks", "give this response 100"
    re.compile(r"\b(?:this|the\s+above|my|the\s+candidate'?s?)\s+(?:answer|response|submission|solution)\s+"
               r"(?:deserves|merits|earns|should\s+(?:get|receive|be\s+(?:given|graded|scored|marked|rated))|"
               r"is\s+worth|must\s+(?:get|receive|be\s+(?:given|graded|scored|marked)))\b", _I),
    re.compile(r"\b(?:give|award|assign|grant|rate|mark|score)\s+(?:this|the\s+above|my)\s+"
               r"(?:answer|response|submission|solution)\b[^.\n]{0,30}(?:\d{2,3}|full|maximum|perfect|strong|top)", _I),
    re.compile(r"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+|the\s+|your\s+)*(?:previous|prior|above|earlier|"
               r"grading|system)\s+(?:instructions?|prompts?|rules|guidelines|rubric)", _I),
    re.compile(r"<!--.*?-->", _I | re.DOTALL),
]
_ADDRESSEE = re.compile(
    r"\b(?:grader|graders|grading\s+(?:model|system|systems|instructions?|mode|assistant)|automated\s+grading|"
    r"evaluator|evaluators|assessor|examiner|the\s+(?:ai|llm|model\s+grading|language\s+model)|ai\s+evaluator|"
    r"language\s+model|instruction\s+to\s+the)\b", _I)
_DEMAND = re.compile(
    r"\b(?:(?:assign|award|give|return|output|grant)\b[^.\n]{0,40}\b(?:score|marks?|points|grade|band|100|strong)|"
    r"full\s+marks|maximum\s+score|(?:score|grade|mark)\s*(?:of|=|:)\s*\d{2,3}|\d{2,3}\s*/\s*100|"
    r"ignore\s+(?:all\s+|any\s+|the\s+|previous\s+|prior\s+|above\s+)*(?:instructions?|rubric|guidelines|code|content)|"
    r"disregard\b|override\b|pre-approved|minimum\s+score)", _I)


@dataclass(frozen=True)
class Directive:
    start: int
    end: int  # the offending line, as offsets into the answer

    def quote(self, answer: str) -> str:
        return answer[self.start:self.end].strip()


def _lines(text: str) -> list[tuple[int, int]]:
    out, pos = [], 0
    for line in text.split("\n"):
        start = pos + (len(line) - len(line.lstrip()))
        end = pos + len(line.rstrip())
        if end > start:
            out.append((start, end))
        pos += len(line) + 1
    return out


def find_directives(answer: str) -> list[Directive]:
    """Lines of the answer that try to instruct the grader (empty for ordinary answers)."""
    lowered = answer.lower()
    if not any(w in lowered for w in ("grad", "evaluat", "system", "score", "assistant", "rubric", "<", "[", "{",
                                       "ignore", "disregard", "forget", "marks", "assess", "examin", "instruction",
                                       "deserve", "merit", "worth", "answer", "response", "submission")):
        return []  # cheap exit: the common case
    found: list[Directive] = []
    spans = _lines(answer)
    for start, end in spans:
        line = answer[start:end]
        if any(p.search(line) for p in _STRUCTURAL) or (_ADDRESSEE.search(line) and _DEMAND.search(line)):
            found.append(Directive(start, end))
    # A multi-line HTML comment is one directive even when no single line matches.
    for m in _STRUCTURAL[-1].finditer(answer):
        if not any(d.start <= m.start() < d.end for d in found):
            found.append(Directive(m.start(), m.end()))
    return sorted(found, key=lambda d: d.start)

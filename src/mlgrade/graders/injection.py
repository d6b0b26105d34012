"""Text in an answer that addresses the grader instead of the question (prompt injection).

An answer is data, never instructions; the LLM grader's prompt says so. The offline grader
cannot be instructed, but an attempt to instruct the grader is still something an interviewer
flags and marks down: the offline grader reports it as the `prompt-injection` misconception
(scoring.py treats it as a wrong central claim), and the lines it sits on earn no key-point credit.

What counts is decided in one place for every grader, mlgrade.review (fake delimiters and
chat-role turns, "ignore the rubric", notes to an AI grader, score demands, JSON score fields,
hidden comments), which also raises the `injection_attempt` review flag.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..injection_scan import find_injections
from ..scoring import PROMPT_INJECTION as MISCONCEPTION_ID

CLAIM = "The answer contains instructions addressed to the grader (a prompt-injection attempt)."


@dataclass(frozen=True)
class Directive:
    start: int
    end: int  # the offending stretch, as offsets into the answer

    def quote(self, answer: str) -> str:
        return answer[self.start:self.end].strip()


def find_directives(answer: str) -> list[Directive]:
    """Stretches of the answer that try to instruct the grader (empty for ordinary answers), from
    the one detector every grader shares (mlgrade.injection_scan.find_injections); overlapping hits are
    merged so each stretch is reported once."""
    merged: list[Directive] = []
    for hit in find_injections(answer):
        start, end = hit.start, hit.end
        while start < end and answer[start].isspace():
            start += 1
        while end > start and answer[end - 1].isspace():
            end -= 1
        if end <= start:
            continue
        if merged and start <= merged[-1].end:
            merged[-1] = Directive(merged[-1].start, max(merged[-1].end, end))
        else:
            merged.append(Directive(start, end))
    return merged

"""The LLM grader for an answer to a follow-up question.

Same endpoint, structured output, retries and re-asks as the main grading (it wraps an
LLMGrader), with its own prompt: the follow-up's key points, and both of the candidate's answers
as delimited data. It implements grading.Grader for the rubric-like view of one follow-up.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..models import Assessment, CodeTestResult, Rubric
from .llm import SCHEMA_NAME, LLMGrader, grading_model, to_assessment
from .prompts import follow_up_messages, load_template
from .replies import parse_json_reply, strict_schema


class FollowUpLLMGrader:
    name = "llm"

    def __init__(self, llm: LLMGrader, rubric: Rubric, first_answer: str):
        self.llm = llm
        self.rubric = rubric  # the main question's rubric: its question and reference are context
        self.first_answer = first_answer
        self.model = llm.model

    def prompt_hash(self, view: Rubric) -> str:
        """Hash of the static part of the request (system message, user template, schema, model)."""
        system = follow_up_messages(self.rubric, view, "", "", nonce="0")[0]
        body = self.llm.endpoint.request_body([system], strict_schema(grading_model(view)), SCHEMA_NAME)
        static = {"body": body, "user_template": load_template("followup.user.md")}
        return hashlib.sha256(json.dumps(static, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]

    async def assess(self, view: Rubric, answer: str, *, facts: list[CodeTestResult] | None = None) -> Assessment:
        model = grading_model(view)
        result = await self.llm.endpoint.call(follow_up_messages(self.rubric, view, self.first_answer, answer), model,
                                              schema_name=SCHEMA_NAME, max_reasks=self.llm.max_reasks,
                                              parse=lambda content: parse_json_reply(model, content))
        return to_assessment(view, result.value, model=result.model, usage=result.usage, attempts=result.attempts,
                             prompt_hash=self.prompt_hash(view), raw=result.raw)


def follow_up_grader(grader: Any, rubric: Rubric, first_answer: str) -> Any:
    """The grader to use on a follow-up view: the LLM one gets the follow-up prompt; graders that
    judge text against key points alone (offline, fake) grade the view as they are."""
    return FollowUpLLMGrader(grader, rubric, first_answer) if isinstance(grader, LLMGrader) else grader

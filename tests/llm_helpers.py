"""Helpers for the LLM tests: replies in the chat.completions shape and a grader wired to respx."""

from __future__ import annotations

import json
from typing import Any

import httpx

BASE_URL = "http://llm.test/v1"
CHAT_URL = f"{BASE_URL}/chat/completions"


def completion(content: str, *, model: str = "gpt-4.1-mini-2025-04-14", prompt_tokens: int = 900,
               completion_tokens: int = 150, cached_tokens: int = 0, finish_reason: str = "stop") -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "finish_reason": finish_reason, "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens,
                      "prompt_tokens_details": {"cached_tokens": cached_tokens}}}


def ok(content: str | dict[str, Any], **kw: Any) -> httpx.Response:
    text = content if isinstance(content, str) else json.dumps(content)
    return httpx.Response(200, json=completion(text, **kw))


def error(status: int, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers or {},
                          json={"error": {"message": message, "type": "invalid_request_error", "code": None}})


def reply_for(rubric: Any, statuses: dict[str, tuple[str, str]] | None = None, *,
              misconceptions: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A valid grading reply: statuses maps key-point id -> (status, evidence); others missing."""
    statuses = statuses or {}
    return {
        "key_points": {kp.id: {"status": statuses.get(kp.id, ("missing", ""))[0],
                               "evidence": statuses.get(kp.id, ("missing", ""))[1],
                               "comment": "ok"} for kp in rubric.key_points},
        "misconceptions": misconceptions or [],
        "strengths": ["clear"],
        "improvements": ["say more about windows"],
        "follow_up": "How do you set the gap?",
    }


def sent(route: Any, i: int = -1) -> dict[str, Any]:
    """The JSON body of the i-th request a respx route received."""
    return json.loads(route.calls[i].request.content)


class FakeSleep:
    """An async sleep that records how long it was asked to wait, and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)

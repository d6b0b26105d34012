"""The LLM grader: rubric + answer → prompt → structured judgments → Assessment.

The model only judges; evidence checks and the score happen later in grading.finalize().
Transport, capability detection, retries and re-asks live in structured.py (shared with
rubric derivation and doctor); this module adds what is specific to grading: the per-rubric
response model, the prompt, and turning a validated reply into an Assessment.

Online grading (`assess`) and the Batch API share one code path: `build_request` makes the
chat.completions body and `parse_reply` reads a reply's text, both used by `assess` too.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..errors import GraderFailure
from ..models import Assessment, CodeTestResult, Judgment, MisconceptionFound, Rubric, Usage
from .prompts import grading_messages, load_template
from ..rubrics import rubric_hash
from .structured import (  # re-exported: the public home of the LLM machinery
    DEFAULT_CAPABILITIES,
    Endpoint,
    InvalidReply,
    RetryEvent,
    RetryPolicy,
    StructuredReply,
    call_structured,
    detect_capabilities,
    parse_json_reply,
    strict_schema,
)

__all__ = ["LLMGrader", "grading_model", "call_structured", "detect_capabilities", "Endpoint", "RetryEvent",
           "RetryPolicy", "StructuredReply", "InvalidReply", "DEFAULT_CAPABILITIES"]

SCHEMA_NAME = "grading_reply"
MAX_LIST_ITEMS = 5


class _Forbid(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PointVerdict(_Forbid):
    status: Literal["covered", "partial", "missing"]
    evidence: str = Field(description="Verbatim quote from the answer; empty when missing.")
    comment: str = Field(description="One short sentence the candidate can act on.")


class PointVerdictEvidenceFirst(_Forbid):
    """The same verdict with its grounds first: strict structured output is generated in schema
    order, so the model quotes and explains before it commits to a status (judge variant
    `evidence-first`)."""

    evidence: str = Field(description="Verbatim quote from the answer; empty when missing.")
    comment: str = Field(description="One short sentence the candidate can act on.")
    status: Literal["covered", "partial", "missing"]


VERDICT_MODELS: dict[str, type[_Forbid]] = {"verdict-first": PointVerdict, "evidence-first": PointVerdictEvidenceFirst}


class MisconceptionClaim(_Forbid):
    id: str = Field(description="A misconception id from the rubric, or new-<slug> for one it does not list.")
    claim: str = Field(description="The wrong claim, in a few words.")
    evidence: str = Field(description="Verbatim quote from the answer that asserts it.")


def _field_name(kp_id: str) -> str:
    # kp ids are kebab-case; the prefix keeps them clear of BaseModel's own attribute names
    return "kp_" + kp_id.replace("-", "_")


@lru_cache(maxsize=256)
def _grading_model(kp_ids: tuple[str, ...], key: str, judge: str = "verdict-first") -> type[BaseModel]:
    verdict = VERDICT_MODELS[judge]
    points = create_model(  # type: ignore[call-overload]
        "KeyPointVerdicts", __config__=ConfigDict(extra="forbid", populate_by_name=True),
        **{_field_name(i): (verdict, Field(alias=i)) for i in kp_ids},
    )
    return create_model(  # type: ignore[call-overload]
        "GradingReply", __config__=ConfigDict(extra="forbid"),
        key_points=(points, Field(description="One verdict per rubric key point, keyed by its id.")),
        misconceptions=(list[MisconceptionClaim], ...),
        strengths=(list[str], ...),
        improvements=(list[str], ...),
        follow_up=(str, ...),
    )


def grading_model(rubric: Rubric, judge: str = "verdict-first") -> type[BaseModel]:
    """The reply model for one rubric: `key_points` has exactly the rubric's key-point ids as
    required properties, so a reply that skips or invents a point fails validation. `judge`
    (a config.JUDGE_VARIANTS name) sets the order of each verdict's fields."""
    return _grading_model(tuple(kp.id for kp in rubric.key_points), rubric_hash(rubric), judge)


def _misconception_id(rubric: Rubric, raw: str) -> str:
    raw = raw.strip()
    if rubric.misconception(raw) or raw.startswith("new-"):
        return raw
    slug = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-") or "unnamed"
    return f"new-{slug}"[:60]


def _clean_list(items: list[str]) -> list[str]:
    return [s.strip() for s in items if s and s.strip()][:MAX_LIST_ITEMS]


def to_assessment(rubric: Rubric, reply: Any, *, model: str, usage: Usage, attempts: int, prompt_hash: str,
                  raw: str) -> Assessment:
    verdicts = reply.key_points
    judgments = []
    for kp in rubric.key_points:
        v: Any = getattr(verdicts, _field_name(kp.id))
        judgments.append(Judgment(key_point=kp.id, status=v.status, evidence=v.evidence.strip(), comment=v.comment.strip()))
    found: dict[str, MisconceptionFound] = {}
    for m in reply.misconceptions:
        mid = _misconception_id(rubric, m.id)
        known = rubric.misconception(mid)
        found.setdefault(mid, MisconceptionFound(id=mid, claim=m.claim.strip() or (known.claim if known else ""),
                                                 evidence=m.evidence.strip()))
    return Assessment(judgments=judgments, misconceptions=list(found.values()), strengths=_clean_list(reply.strengths),
                      improvements=_clean_list(reply.improvements), follow_up=reply.follow_up.strip(), model=model,
                      usage=usage, attempts=attempts, prompt_hash=prompt_hash, raw_reply=raw)


class LLMGrader:
    """Grades with an OpenAI-compatible chat endpoint. Implements grading.Grader.

    `store` holds the capability cache (default: the Store under MLGRADE_HOME); `on_retry` is
    called with a RetryEvent before every wait (batch uses it to back off on 429s); `policy`
    and `client` are injectable for tests.
    """

    name = "llm"

    def __init__(self, settings: Any, *, store: Any = None, on_retry: Any = None, policy: RetryPolicy | None = None,
                 client: Any = None, max_reasks: int = 2):
        self.settings = settings
        self.model: str = settings.model
        self.judge: str = getattr(settings, "judge", "verdict-first")
        self.max_reasks = max_reasks
        self.endpoint = Endpoint(settings, store=store, on_retry=on_retry, policy=policy, client=client)
        self._prompt_hashes: dict[tuple[str, str], str] = {}

    async def aclose(self) -> None:
        await self.endpoint.aclose()

    @property
    def on_retry(self) -> Any:
        """The RetryEvent callback (kept on the endpoint, which makes the calls)."""
        return self.endpoint.on_retry

    @on_retry.setter
    def on_retry(self, callback: Any) -> None:
        self.endpoint.on_retry = callback

    @property
    def capabilities(self) -> dict[str, Any]:
        return self.endpoint.capabilities()

    def _messages(self, rubric: Rubric, answer: str, facts: list[CodeTestResult] | None) -> list[dict[str, str]]:
        return grading_messages(rubric, answer, facts=facts)

    def prepare(self, rubric: Rubric) -> None:
        """Build the rubric's reply model and its JSON schema now (both cached module-wide, pure,
        ~4 ms of CPU a rubric): a batch calls this ahead, in its worker thread, because built on
        the event loop at a question's first answer they stall every request in flight."""
        strict_schema(grading_model(rubric, self.judge))

    def prompt_hash(self, rubric: Rubric) -> str:
        """Hash of everything static in a request for this rubric: the system message as sent
        (instructions, rubric, format instructions under the current capabilities), the user
        template, the schema, the model and its sampling settings. Same hash → same prefix.
        Memoised per rubric and capability state: batch asks for it once per answer."""
        key = (rubric_hash(rubric), json.dumps(self.endpoint.capabilities(), sort_keys=True))
        if key not in self._prompt_hashes:
            self._prompt_hashes[key] = self._compute_prompt_hash(rubric)
        return self._prompt_hashes[key]

    def _compute_prompt_hash(self, rubric: Rubric) -> str:
        body = self.endpoint.request_body([{"role": "system", "content": grading_messages(rubric, "", nonce="0")[0]["content"]}],
                                          strict_schema(grading_model(rubric, self.judge)), SCHEMA_NAME)
        static = {"body": body, "user_template": load_template("grade.user.md")}
        digest = hashlib.sha256(json.dumps(static, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        return digest.hexdigest()[:16]

    def build_request(self, rubric: Rubric, answer: str, facts: list[CodeTestResult] | None = None) -> dict[str, Any]:
        """The chat.completions body (model, messages, response_format, temperature, seed) for
        one answer, under the capabilities in effect. A fresh nonce every call."""
        return self.endpoint.request_body(self._messages(rubric, answer, facts), strict_schema(grading_model(rubric, self.judge)),
                                          SCHEMA_NAME)

    def _parse(self, rubric: Rubric, content: str | None) -> Any:
        return parse_json_reply(grading_model(rubric, self.judge), content)

    def parse_reply(self, rubric: Rubric, answer: str, content: str | None, usage: dict[str, int] | None = None, *,
                    model: str | None = None, attempts: int = 1) -> Assessment:
        """A reply's text as an Assessment; GraderFailure (raw reply kept) when it is not valid.
        `usage` takes input_tokens/output_tokens/cached_tokens or the API's prompt_tokens/
        completion_tokens/prompt_tokens_details shape."""
        try:
            reply = self._parse(rubric, content)
        except InvalidReply as exc:
            raise GraderFailure(str(exc), raw_reply=content, attempts=attempts) from None
        return to_assessment(rubric, reply, model=model or self.model, usage=usage_from(usage), attempts=attempts,
                             prompt_hash=self.prompt_hash(rubric), raw=content or "")

    async def assess(self, rubric: Rubric, answer: str, *, facts: list[CodeTestResult] | None = None) -> Assessment:
        result = await self.endpoint.call(self._messages(rubric, answer, facts), grading_model(rubric, self.judge),
                                          schema_name=SCHEMA_NAME, max_reasks=self.max_reasks,
                                          parse=lambda content: self._parse(rubric, content))
        return to_assessment(rubric, result.value, model=result.model, usage=result.usage, attempts=result.attempts,
                             prompt_hash=self.prompt_hash(rubric), raw=result.raw)


def usage_from(usage: dict[str, Any] | None) -> Usage:
    """Usage from our own keys or the chat.completions `usage` object's keys."""
    if not usage:
        return Usage()
    if "input_tokens" in usage or "output_tokens" in usage:
        return Usage(input_tokens=usage.get("input_tokens") or 0, output_tokens=usage.get("output_tokens") or 0,
                     cached_tokens=usage.get("cached_tokens") or 0)
    details = usage.get("prompt_tokens_details") or {}
    return Usage(input_tokens=usage.get("prompt_tokens") or 0, output_tokens=usage.get("completion_tokens") or 0,
                 cached_tokens=(details.get("cached_tokens") if isinstance(details, dict) else 0) or 0)

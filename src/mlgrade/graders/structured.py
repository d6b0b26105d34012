"""Ask an OpenAI-compatible endpoint for JSON that validates against a pydantic model.

One machinery for every LLM call mlgrade makes (grading, rubric derivation, doctor's probe):

- **Capabilities** per (base URL, model): response_format json_schema (strict) → json_object
  with a schema (llama.cpp) → plain JSON instructions in the prompt; and whether `seed` and
  `temperature` are accepted. Learnt from the endpoint's 400 replies, remembered in the
  Store's capabilities table, so later runs send the right request directly.
- **Retries**: tenacity is the only retry layer (the SDK's is off). 429 (honouring
  Retry-After / retry-after-ms), 5xx, timeouts and connection errors are retried with
  jittered exponential backoff, within a cap on attempts and on total waiting.
- **Re-asks**: a reply that is not valid JSON for the model is re-asked (2 times by default)
  with the validation error appended to the conversation.
- Anything else (401/403, 404, an unexplained 400) ends at once as a GraderFailure.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from .client import EndpointError, chat, endpoint_url, make_client
from ..errors import GraderFailure
from ..models import Usage
from .replies import InvalidReply, parse_json_reply, strict_schema  # noqa: F401  (re-exported)

T = TypeVar("T", bound=BaseModel)

FORMATS = ("json_schema", "json_object", "plain")
# max_tokens_param: which name caps the reply's length ("max_tokens", "max_completion_tokens" for
# models that refuse the old name, or None when the endpoint takes neither).
DEFAULT_CAPABILITIES: dict[str, Any] = {"response_format": "json_schema", "seed": True, "temperature": True,
                                        "max_tokens_param": "max_tokens"}
SEED = 20240607  # fixed, so endpoints that honour seeds give repeatable grades
MAX_CAPABILITY_STEPS = 4
FORMAT_INSTRUCTIONS = (
    "\n\nReply with a single JSON object that conforms to this JSON Schema. No prose before or after it, "
    "no code fences.\n{schema}"
)
REASK = ("Your previous reply could not be used: {error}\n"
         "Reply again with the complete JSON object only, fixing that problem.")


@dataclass
class RetryPolicy:
    """How long to keep trying a transient failure. `sleep` is injectable for tests."""

    max_attempts: int = 5          # HTTP attempts for one ask (transient errors only)
    initial_wait: float = 0.5      # first backoff, doubled per attempt
    max_wait: float = 30.0         # cap on one backoff (a server's Retry-After may ask for more)
    max_total_wait: float = 120.0  # give up rather than wait longer than this in total
    jitter: float = 0.5            # uniform 0..jitter seconds added to computed backoffs
    refused_attempts: int = 2      # a refused connection (nothing listening) is tried this often at most
    refused_wait: float = 0.2      # and waited for this long in between, without backoff
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass
class RetryEvent:
    """Passed to `on_retry` before every wait. kind: rate_limit, server, timeout, connection or
    invalid_reply; wait_s: the wait chosen (a server's Retry-After when it sent one)."""

    kind: str
    wait_s: float
    attempt: int
    message: str = ""
    status: int | None = None


@dataclass
class StructuredReply(Generic[T]):
    value: T
    raw: str
    usage: Usage
    attempts: int  # HTTP requests sent, retries and re-asks included
    model: str
    capabilities: dict[str, Any] = field(default_factory=dict)


class Endpoint:
    """A chat endpoint as mlgrade uses it: one client, its learnt capabilities, a retry policy."""

    def __init__(self, settings: Any, *, store: Any = None, on_retry: Callable[[RetryEvent], None] | None = None,
                 policy: RetryPolicy | None = None, client: Any = None):
        self.settings = settings
        self.model: str = settings.model
        self.base_url = endpoint_url(settings)
        self.on_retry = on_retry
        self.policy = policy or RetryPolicy()
        self._store = store
        self._injected_client = client
        self._client: Any = None
        self._client_loop: Any = None
        self._caps: dict[str, Any] | None = None
        self._caps_saved = False  # True once the record in the store matches _caps

    @property
    def client(self) -> Any:
        # httpx pools are bound to the event loop they were made on: one client per loop, so a
        # grader reused across asyncio.run() calls (practice, the Python API) keeps working.
        loop = _running_loop()
        if self._client is None or (self._client_loop is not None and self._client_loop is not loop):
            if self._injected_client is not None:
                self._client = self._injected_client
            else:
                self._client = make_client(self.settings)
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client made for the running loop (a no-op when none was made)."""
        client, self._client = self._client, None
        if client is not None and client is not self._injected_client:
            await client.close()

    @property
    def store(self) -> Any:
        if self._store is None:
            from ..store import Store

            self._store = Store.for_settings(self.settings)
        return self._store

    # ---------------------------------------------------------------- capabilities

    def capabilities(self) -> dict[str, Any]:
        """What this endpoint accepts: the cached record, else optimistic defaults."""
        if self._caps is None:
            cached = self.store.capabilities_get(self.base_url, self.model) if self.settings.cache_capabilities else None
            self._caps = {**DEFAULT_CAPABILITIES, **(cached or {})}
            self._caps_saved = cached is not None
        return dict(self._caps)

    def _remember(self, caps: dict[str, Any]) -> None:
        self._caps = dict(caps)
        self.store.capabilities_put(self.base_url, self.model, self._caps)
        self._caps_saved = True

    def _adapt(self, caps: dict[str, Any], error: EndpointError) -> dict[str, Any] | None:
        """The capabilities to try after a 400/422, or None when the error is not about them."""
        if error.kind != "bad_request":
            return None
        text = f"{error.message} {json.dumps(error.body, default=str) if error.body else ''}".lower()
        fmt = caps["response_format"]
        param = caps.get("max_tokens_param")
        if param == "max_tokens" and "max_tokens" in text:
            return {**caps, "max_tokens_param": "max_completion_tokens"}
        if param == "max_completion_tokens" and "max_completion_tokens" in text:
            return {**caps, "max_tokens_param": None}
        if fmt != "plain" and any(w in text for w in ("response_format", "json_schema", "json_object", "schema")):
            return {**caps, "response_format": FORMATS[FORMATS.index(fmt) + 1]}
        if caps["seed"] and "seed" in text:
            return {**caps, "seed": False}
        if caps["temperature"] and "temperature" in text:
            return {**caps, "temperature": False}
        return None

    # ---------------------------------------------------------------- requests

    def request_body(self, messages: list[dict[str, str]], schema: dict[str, Any], schema_name: str,
                     caps: dict[str, Any] | None = None) -> dict[str, Any]:
        """The chat.completions body for these messages under the capabilities in effect. In the
        json_object and plain modes the schema is also written into the first system message."""
        caps = caps or self.capabilities()
        fmt = caps["response_format"]
        messages = [dict(m) for m in messages]
        if fmt != "json_schema":
            text = FORMAT_INSTRUCTIONS.format(schema=json.dumps(schema, ensure_ascii=False, separators=(",", ":")))
            if messages and messages[0]["role"] == "system":
                messages[0]["content"] += text
            else:
                messages.insert(0, {"role": "system", "content": text.strip()})
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if caps.get("temperature", True):
            body["temperature"] = 0
        if caps.get("seed", True):
            body["seed"] = SEED
        # without a cap a small local model can generate until its context is full (minutes)
        max_tokens = getattr(self.settings, "max_tokens", None)
        param = caps.get("max_tokens_param", "max_tokens")
        if max_tokens and param:
            body[param] = max_tokens
        if fmt == "json_schema":
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": schema_name, "strict": True, "schema": schema}}
        elif fmt == "json_object":
            body["response_format"] = {"type": "json_object", "schema": schema}
        return body

    def _event(self, kind: str, wait_s: float, attempt: int, message: str = "", status: int | None = None) -> None:
        if self.on_retry is not None:
            self.on_retry(RetryEvent(kind=kind, wait_s=wait_s, attempt=attempt, message=message, status=status))

    async def _send_with_retries(self, body: dict[str, Any], counter: list[int]) -> Any:
        """One ask, retried on transient failures by tenacity. `counter[0]` counts requests."""
        from tenacity import AsyncRetrying, retry_if_exception

        policy = self.policy
        chosen: dict[int, float] = {}

        def choose_wait(rs: Any) -> float:
            # stop and wait both need the wait; compute it once per attempt (order differs across tenacity versions)
            if rs.attempt_number not in chosen:
                exc = rs.outcome.exception()
                if isinstance(exc, EndpointError) and exc.refused:
                    chosen[rs.attempt_number] = policy.refused_wait
                elif isinstance(exc, EndpointError) and exc.retry_after is not None:
                    chosen[rs.attempt_number] = exc.retry_after
                else:
                    backoff = min(policy.max_wait, policy.initial_wait * 2 ** (rs.attempt_number - 1))
                    chosen[rs.attempt_number] = backoff + random.uniform(0, policy.jitter)
            return chosen[rs.attempt_number]

        def stop(rs: Any) -> bool:
            choose_wait(rs)  # the total below includes the wait this retry would take
            exc = rs.outcome.exception()
            if isinstance(exc, EndpointError) and exc.refused and rs.attempt_number >= policy.refused_attempts:
                return True
            return rs.attempt_number >= policy.max_attempts or sum(chosen.values()) > policy.max_total_wait

        def before_sleep(rs: Any) -> None:
            exc = rs.outcome.exception()
            self._event(exc.kind, rs.next_action.sleep, rs.attempt_number, exc.message, exc.status)

        retrying = AsyncRetrying(
            stop=stop, wait=choose_wait, sleep=policy.sleep, reraise=True, before_sleep=before_sleep,
            retry=retry_if_exception(lambda e: isinstance(e, EndpointError) and e.retryable),
        )
        async for attempt in retrying:
            with attempt:
                counter[0] += 1
                return await chat(self.client, body)
        raise AssertionError("unreachable: tenacity either returns or reraises")

    async def _ask(self, messages: list[dict[str, str]], extra: list[dict[str, str]], schema: dict[str, Any],
                   schema_name: str, counter: list[int]) -> Any:
        """Send, learning capabilities from 400s on the way (each lesson saved for next time)."""
        caps = self.capabilities()
        for _ in range(MAX_CAPABILITY_STEPS + 1):
            body = self.request_body(messages, schema, schema_name, caps)
            body["messages"] += extra
            try:
                reply = await self._send_with_retries(body, counter)
            except EndpointError as exc:
                adapted = self._adapt(caps, exc)
                if adapted is None:
                    raise
                caps = adapted
                self._remember(caps)
                continue
            if not self._caps_saved or caps != self._caps:
                self._remember(caps)  # confirmed by a successful call
            return reply
        raise EndpointError("bad_request", "the endpoint rejected every request format mlgrade knows")

    async def call(self, messages: list[dict[str, str]], response_model: type[T], *, schema_name: str = "reply",
                   max_reasks: int = 2, parse: Callable[[str | None], T] | None = None) -> StructuredReply[T]:
        schema = strict_schema(response_model)
        parse = parse or (lambda content: parse_json_reply(response_model, content))
        counter = [0]
        usage = Usage()
        extra: list[dict[str, str]] = []
        last_raw: str | None = None
        last_error = ""
        for ask in range(max_reasks + 1):
            try:
                reply = await self._ask(messages, extra, schema, schema_name, counter)
            except EndpointError as exc:
                raise _failure(exc, counter[0], last_raw) from None
            usage = usage + Usage(**reply.usage)
            last_raw = reply.content
            try:
                value = parse(reply.content)
            except InvalidReply as exc:
                last_error = f"the model refused: {reply.refusal}" if reply.refusal and not reply.content else str(exc)
                if reply.finish_reason == "length":
                    last_error += " (the reply was cut off at the token limit)"
                if ask < max_reasks:
                    self._event("invalid_reply", 0.0, counter[0], last_error)
                    extra = [{"role": "assistant", "content": reply.content or ""},
                             {"role": "user", "content": REASK.format(error=last_error)}]
                continue
            return StructuredReply(value=value, raw=reply.content or "", usage=usage, attempts=counter[0],
                                   model=reply.model or self.model, capabilities=self.capabilities())
        raise GraderFailure(f"no valid reply after {max_reasks + 1} asks: {last_error}", raw_reply=last_raw,
                            attempts=counter[0])


def _running_loop() -> Any:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _failure(exc: EndpointError, attempts: int, raw: str | None) -> GraderFailure:
    hints = {
        "auth": "authentication failed: check OPENAI_API_KEY",
        "not_found": "the model or endpoint was not found: check MLGRADE_MODEL and OPENAI_BASE_URL",
        "bad_request": "the endpoint rejected the request",
    }
    if exc.kind in hints:
        return GraderFailure(f"{hints[exc.kind]} ({exc.message})", raw_reply=raw, attempts=attempts,
                             fatal=exc.kind in ("auth", "not_found"))
    # the attempt count travels in `attempts` (and is shown next to the message): said once
    # a refused connection is fatal too: a batch stops at once instead of failing every answer
    return GraderFailure(exc.message, raw_reply=raw, attempts=attempts, fatal=exc.refused)


async def call_structured(endpoint: Endpoint | Any, messages: list[dict[str, str]], response_model: type[T], *,
                          schema_name: str = "reply", max_reasks: int = 2,
                          parse: Callable[[str | None], T] | None = None) -> StructuredReply[T]:
    """Ask for one JSON object validated by `response_model`, with capability detection,
    retries and re-asks.

    endpoint:       an `Endpoint` (reuse one to share the client and learnt capabilities), or a
                    `Settings`, from which a fresh Endpoint is made (store = MLGRADE_HOME's).
    messages:       chat messages; put the static part first (system) for prompt caching. In the
                    json_object / plain modes the schema is appended to the first system message.
    response_model: a pydantic model; its schema is sent strict (all fields required, no extras),
                    so give fields no defaults and keep constraints in validators.
    schema_name:    the json_schema name (letters, digits, _ and -).
    max_reasks:     how many times an invalid reply is re-asked with the error appended.
    parse:          optional `content -> model instance`, raising `InvalidReply` with a message
                    for the model; default: JSON extraction + `response_model.model_validate`.

    Returns StructuredReply(value, raw, usage, attempts, model, capabilities). Raises
    GraderFailure (raw reply kept; fatal=True for 401/403/404) when no valid reply came back.
    """
    if not isinstance(endpoint, Endpoint):
        endpoint = Endpoint(endpoint)
    return await endpoint.call(messages, response_model, schema_name=schema_name, max_reasks=max_reasks, parse=parse)


class _Probe(BaseModel):
    ok: bool


async def detect_capabilities(settings: Any, store: Any = None, refresh: bool = False, *,
                              endpoint: Endpoint | None = None) -> dict[str, Any]:
    """{"response_format": "json_schema"|"json_object"|"plain", "seed": bool, "temperature": bool}
    for the configured endpoint and model: the cached record, or (refresh=True / none cached)
    learnt from one tiny probe call and cached. Raises GraderFailure when the endpoint fails."""
    endpoint = endpoint or Endpoint(settings, store=store)
    if not refresh and settings.cache_capabilities:
        cached = endpoint.store.capabilities_get(endpoint.base_url, endpoint.model)
        if cached:
            return {**DEFAULT_CAPABILITIES, **cached}
    endpoint._caps = dict(DEFAULT_CAPABILITIES)
    endpoint._caps_saved = False
    messages = [{"role": "system", "content": "You answer in JSON."},
                {"role": "user", "content": 'Reply with the JSON object {"ok": true}.'}]
    await endpoint.call(messages, _Probe, schema_name="probe", max_reasks=1)
    return endpoint.capabilities()

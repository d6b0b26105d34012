"""The one module that imports `openai`, and only inside functions (the CLI must start fast).

It turns the SDK's exceptions into `EndpointError` with a `kind` the retry layer understands,
so no other module needs to know the SDK's class names. The SDK's own retries are off
(`max_retries=0`): tenacity in llm.py is the only retry layer.
"""

from __future__ import annotations

import email.utils
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Settings

OPENAI_BASE_URL = "https://api.openai.com/v1"
# Local servers (llama.cpp, vLLM, Ollama) ignore the key, but the SDK insists on one.
PLACEHOLDER_KEY = "sk-local-no-key"

RETRYABLE_KINDS = frozenset({"rate_limit", "server", "timeout", "connection"})


@dataclass
class EndpointError(Exception):
    """A failed call. `kind`: rate_limit, server, timeout, connection (retryable), or auth,
    not_found, bad_request (not retryable). `retry_after` is seconds the server asked for."""

    kind: str
    message: str
    status: int | None = None
    retry_after: float | None = None
    body: Any = None
    # nothing listens at the address (ECONNREFUSED): a dead local server, not a transient fault,
    # so the retry layer allows one quick retry at most instead of backing off for seconds
    refused: bool = False

    def __str__(self) -> str:
        return self.message

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS


@dataclass
class ChatReply:
    content: str | None
    model: str
    finish_reason: str | None
    usage: dict[str, int] = field(default_factory=dict)  # input_tokens, output_tokens, cached_tokens
    refusal: str | None = None  # the model declined (structured-output refusal); content is None then


def endpoint_url(settings: Settings) -> str:
    """The base URL in effect, normalised, as used for the capability cache key."""
    return (settings.base_url or OPENAI_BASE_URL).rstrip("/")


def make_client(settings: Settings) -> Any:
    """An AsyncOpenAI client with the SDK's retries off and the configured timeout."""
    from openai import AsyncOpenAI, DefaultAsyncHttpxClient

    from ..errors import ConfigError

    if not settings.api_key and not settings.base_url:
        raise ConfigError("the llm grader needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server); "
                          "use --grader offline to grade without one")
    # Our own httpx client (the SDK's defaults, without its wrapper's __del__): the wrapper schedules
    # its close on whatever loop runs at garbage-collection time, which prints a traceback when the
    # client was made under an earlier asyncio.run(). Endpoint closes its clients itself.
    return AsyncOpenAI(api_key=settings.api_key or PLACEHOLDER_KEY, base_url=endpoint_url(settings),
                       max_retries=0, timeout=settings.timeout, http_client=DefaultAsyncHttpxClient(verify=_ssl_context()))


_ssl_contexts: dict[tuple[str | None, str | None], Any] = {}


def _ssl_context() -> Any:
    """httpx's default TLS context (certifi's roots, or SSL_CERT_FILE / SSL_CERT_DIR), made once per
    process: loading the roots costs 50-250 ms, paid by every client otherwise, i.e. by every batch
    before its first request. An SSLContext is safe to share between clients."""
    import os

    import httpx

    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    if key not in _ssl_contexts:
        _ssl_contexts[key] = httpx.create_ssl_context(verify=True, trust_env=True)
    return _ssl_contexts[key]


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` (OpenAI's precise header) or `retry-after` (seconds or an
    HTTP date). None when absent or unusable."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            value = float(ms) / 1000.0
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        value = float(raw)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(raw)
    if parsed is None:
        return None
    return max(0.0, email.utils.mktime_tz(parsed) - time.time())


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(getattr(exc, "message", None) or exc)


def _request_validation_error(message: str) -> bool:
    """A server error that is really a refusal of our request body (FastAPI/pydantic wording,
    e.g. "1 validation error: … ('body', 'response_format', 'type') …"): retrying cannot help,
    changing the request can."""
    text = message.lower()
    return "validation error" in text and ("'body'" in text or '"body"' in text or "body." in text)


def _refused(exc: BaseException) -> bool:
    """True when the chain of causes says the connection was refused (nothing listening)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or getattr(current, "errno", None) == 111:
            return True
        if "connection refused" in str(current).lower() or str(current).strip().lower() == "refused":
            return True
        current = current.__cause__ or current.__context__
    return False


def translate_error(exc: BaseException) -> EndpointError | None:
    """The SDK exception as an EndpointError, or None when it is not an SDK error."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return EndpointError("timeout", "the request timed out")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        request = getattr(exc, "_request", None) or getattr(exc, "request", None)
        url = str(request.url) if request is not None else "the endpoint"
        if _refused(exc):
            return EndpointError("connection", f"could not connect to {url}: connection refused", refused=True)
        return EndpointError("connection", f"could not connect to {url} ({cause or exc})")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        message = _error_message(exc)
        retry_after = parse_retry_after(exc.response.headers)
        if status == 429:
            kind = "rate_limit"
        elif status >= 500 and _request_validation_error(message):
            kind = "bad_request"  # llama-cpp-python answers a body it cannot validate with a 500
        elif status in (408, 409) or status >= 500:
            kind = "server"
        elif status in (401, 403):
            kind = "auth"
        elif status == 404:
            kind = "not_found"
        else:
            kind = "bad_request"
        return EndpointError(kind, f"HTTP {status}: {message}", status=status, retry_after=retry_after, body=exc.body)
    if isinstance(exc, openai.APIResponseValidationError):
        return EndpointError("server", f"the endpoint sent a reply the SDK cannot read: {exc}")
    return None


async def chat(client: Any, body: dict[str, Any]) -> ChatReply:
    """POST /chat/completions with `body` as is; raise EndpointError on any failure."""
    import openai

    try:
        # A plain POST rather than chat.completions.create: the typed method walks every nested
        # param recursively (about 2 ms per request with a large response schema, the biggest
        # client-side cost in batch). Our body is already exactly what goes on the wire.
        from openai.types.chat import ChatCompletion

        completion = await client.post("/chat/completions", cast_to=ChatCompletion, body=body)
    except openai.OpenAIError as exc:
        translated = translate_error(exc)
        if translated is None:
            raise EndpointError("bad_request", str(exc)) from exc
        raise translated from exc
    if not getattr(completion, "choices", None):
        raise EndpointError("server", "the endpoint replied without any choice")
    choice = completion.choices[0]
    usage: dict[str, int] = {}
    if completion.usage is not None:
        details = getattr(completion.usage, "prompt_tokens_details", None)
        usage = {"input_tokens": completion.usage.prompt_tokens or 0,
                 "output_tokens": completion.usage.completion_tokens or 0,
                 "cached_tokens": (getattr(details, "cached_tokens", None) or 0) if details else 0}
    message = choice.message
    return ChatReply(content=message.content if message is not None else None,
                     model=completion.model or body.get("model", ""), finish_reason=choice.finish_reason, usage=usage,
                     refusal=getattr(message, "refusal", None) if message is not None else None)

"""Exceptions that end in a clear one-line message and an exit code, never a traceback."""

from __future__ import annotations


class MlgradeError(Exception):
    """Base for every error mlgrade reports to a user. `exit_code` follows the CLI contract:
    1 some items failed, 2 usage/config/input error."""

    exit_code = 2


class UsageError(MlgradeError):
    """Bad arguments or bad input (missing file, empty or oversized answer, bad encoding)."""


class ConfigError(MlgradeError):
    """The configuration cannot work (no key for the llm grader, unknown grader name…)."""


class UnknownQuestionError(UsageError):
    def __init__(self, qid: str, suggestions: list[str] | None = None):
        self.qid = qid
        self.suggestions = suggestions or []
        hint = f". Did you mean: {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown question id {quote_name(qid)}{hint} (see `mlgrade questions list`)")


# --------------------------------------------------------------------------- names in messages
# A message quotes what the user gave (a column header, an id, a sheet or a --map name). A header
# cell can be 1 MB and hold ESC or newlines: quoted through these, it stays one short, inert line.

NAME_CHARS = 60  # how much of a name a message shows
NAMES_SHOWN = 10  # how many names a list in a message shows


def quote_name(name: object, width: int = NAME_CHARS) -> str:
    """`name` quoted as Python does (`'Response 3'`), cut to its first `width` characters + "…"
    when longer; `repr` shows control, bidi and undecodable characters as escapes (`\\x1b`)."""
    text = "" if name is None else str(name)
    return repr(text if len(text) <= width else text[:width] + "…")


def quote_names(names: object, limit: int = NAMES_SHOWN, width: int = NAME_CHARS) -> str:
    """`'a', 'b', … and N more`: at most `limit` names, each through `quote_name`."""
    items = list(names)  # type: ignore[call-overload]
    shown = ", ".join(quote_name(n, width) for n in items[:limit])
    return shown + (f", … and {len(items) - limit:,} more" if len(items) > limit else "")


class RubricError(MlgradeError):
    """A rubric file is invalid; `problems` holds one line per problem, each naming file and field."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(problems[0] if len(problems) == 1 else f"{len(problems)} rubric problems: {problems[0]} …")


class GraderFailure(MlgradeError):
    """A grading attempt that could not produce a valid assessment. Becomes a `grader_error`
    outcome with the reason and the raw reply kept; never a score."""

    exit_code = 1

    def __init__(self, reason: str, raw_reply: str | None = None, attempts: int = 1, fatal: bool = False):
        # redacted here, once: the reason and reply go to panels, --json, results files and reports
        reason = redact(reason) or ""
        super().__init__(reason)
        self.reason = reason
        self.raw_reply = redact(raw_reply)
        self.attempts = attempts
        # fatal: the endpoint or configuration is wrong (401, 404…): retrying other items is pointless
        self.fatal = fatal


# --------------------------------------------------------------------------- secret redaction
# One function for every error text before it is shown or stored: an endpoint that echoes the
# Authorization header back must not put the key in a panel, a results file or a report.

REDACTED = "[REDACTED]"
_known_secrets: set[str] = set()
_SECRET_PATTERNS = None


def register_secret(value: str | None) -> None:
    """Remember a configured secret (the API key) so `redact` removes it wherever it appears."""
    if value and len(value) >= 4:
        _known_secrets.add(value)


def _patterns():  # type: ignore[no-untyped-def]
    global _SECRET_PATTERNS
    if _SECRET_PATTERNS is None:
        import re

        _SECRET_PATTERNS = [
            # Authorization: Bearer <token> / Basic <token>
            (re.compile(r"(?i)\b(bearer)(\s+|%20)[A-Za-z0-9._~+/=\-]{4,}"), r"\1\2" + REDACTED),
            (re.compile(r"\b(Basic)(\s+|%20)[A-Za-z0-9+/=]{8,}"), r"\1\2" + REDACTED),
            # OpenAI-style keys: sk-…, sk-proj-…
            (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), REDACTED),
            # credentials in a URL: scheme://user:pass@host
            (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s:@]*:[^/\s@]*@"), r"\1" + REDACTED + "@"),
            (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s:@]+@"), r"\1" + REDACTED + "@"),
            # token-like query or form parameters: ?token=…, &api_key=…, access_token=…
            (re.compile(r"(?i)([?&;](?:[a-z_\-]*token|api[_\-]?key|key|secret|password|passwd|pwd|sig|signature|auth)=)"
                        r"[^&#\s\"']+"), r"\1" + REDACTED),
        ]
    return _SECRET_PATTERNS


def redact(text: str | None, *, secrets: tuple[str, ...] = ()) -> str | None:
    """`text` with the configured key (and `secrets`), Bearer/Basic tokens, `sk-…` keys, URL
    credentials and token query parameters replaced by [REDACTED]. None stays None."""
    if not text:
        return text
    for secret in sorted({*(_known_secrets), *(s for s in secrets if s and len(s) >= 4)}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _patterns():
        text = pattern.sub(replacement, text)
    return text


def redact_url(url: str | None) -> str | None:
    """A URL without its credentials (user:password@) or token-like query parameters, for
    display and for use as a storage key."""
    return redact(url)

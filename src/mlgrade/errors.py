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
        super().__init__(f"unknown question id {qid!r}{hint} (see `mlgrade questions list`)")


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
        super().__init__(reason)
        self.reason = reason
        self.raw_reply = raw_reply
        self.attempts = attempts
        # fatal: the endpoint or configuration is wrong (401, 404…): retrying other items is pointless
        self.fatal = fatal

"""`mlgrade grade ID [ANSWER | --file F | -]`: grade one answer and show (or print as JSON) the result."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ._common import (
    BaseUrlOpt,
    GraderOpt,
    JsonOpt,
    JudgeOpt,
    LegacyRefreshOpt,
    ModelOpt,
    RefreshOpt,
    RubricsOpt,
    bank_from,
    console,
    file_opt,
    option,
    print_json,
    refresh_flag,
    settings_from,
)

if TYPE_CHECKING:
    from ..config import Settings
    from ..models import Grade, Rubric

MAX_SAMPLES = 10


def read_answer(answer: str | None, file: Path | None, settings: Settings) -> str:
    """The answer text from the argument, a file, or stdin (`-`). Refuses non-UTF-8 input and
    answers over the limit with a one-line UsageError, before anything is sent anywhere."""
    from ..errors import UsageError, quote_name
    from ..grading import check_answer
    from ..textfiles import STDIN, read_text

    if answer is not None and file is not None:
        raise UsageError("give the answer either as an argument or with --file, not both")
    # bounded reads: `--file /dev/zero` or `yes | mlgrade grade q05 -` stop at the limit + 1 character
    if file is not None:
        text = read_text(file, max_chars=settings.max_answer_chars)
    elif answer is not None:
        text = read_text(STDIN, max_chars=settings.max_answer_chars) if answer == STDIN else answer
        if answer != STDIN and _names_a_file(answer):
            raise UsageError(f"the answer {quote_name(answer)} is the name of a file, not an answer: to grade what "
                             f"the file holds, use --file {answer}")
    else:
        raise UsageError("no answer given: pass it as an argument, with --file F, or `-` to read standard input")
    check_answer(text, settings)  # raises for an oversize answer; an empty one is reported as skipped later
    return text


def _names_a_file(answer: str) -> bool:
    """A one-word answer that is the path of an existing file (`grade q24 solution.py`, --file forgotten)."""
    if len(answer) > 255 or not answer.strip() or any(c.isspace() for c in answer.strip()):
        return False
    try:
        return Path(answer.strip()).is_file()
    except (OSError, ValueError):
        return False


def _notify_retry(event) -> None:  # type: ignore[no-untyped-def]
    what = {"rate_limit": "rate limited", "server": "server error", "timeout": "timed out",
            "connection": "connection failed", "invalid_reply": "reply did not validate"}.get(event.kind, event.kind)
    if event.kind == "connection" and "connection refused" in event.message:
        what = "connection refused"
    action = "asking again" if event.kind == "invalid_reply" else f"retrying in {event.wait_s:.1f}s"
    sys.stderr.write(f"note: {what}; {action}\n")


async def _run(rubric: Rubric, answer: str, settings: Settings, samples: int, quiet: bool) -> Grade:
    from ..grading import agrade_rubric, check_answer, make_grader

    if check_answer(answer, settings):  # empty: skipped before any grader (or key) is needed
        return await agrade_rubric(rubric, answer, settings=settings, samples=samples)
    if settings.grader_kind == "llm":
        from ..graders.llm import LLMGrader

        grader = LLMGrader(settings, on_retry=None if quiet else _notify_retry)
    else:
        try:
            grader = make_grader(settings)
        except ImportError:
            from ..errors import ConfigError

            raise ConfigError(f"the {settings.grader_kind} grader is not available in this version") from None
    try:
        return await agrade_rubric(rubric, answer, settings=settings, grader=grader, samples=samples)
    finally:
        close = getattr(grader, "aclose", None)
        if close is not None:
            await close()


def grade_command(
    question_id: Annotated[str, typer.Argument(help="Question id: q7, q07 or 7.", metavar="ID", show_default=False)],
    answer: Annotated[Optional[str], typer.Argument(help="The answer text, or `-` to read standard input.",
                                                    metavar="ANSWER", show_default=False)] = None,
    file: Annotated[Optional[Path], file_opt("Read the answer from a UTF-8 text file.")] = None,
    json_out: JsonOpt = False,
    samples: Annotated[int, option("--samples", min=1, max=MAX_SAMPLES, metavar="N", show_default=True,
                                   help="Grade N times in parallel; report the median score, the spread and "
                                        "each key point's majority status.")] = 1,
    grader: GraderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    refresh: RefreshOpt = False,
    no_cache_capabilities: LegacyRefreshOpt = False,
    rubrics: RubricsOpt = None,
    judge: JudgeOpt = None,
    no_exec: Annotated[bool, option("--no-exec", help="Do not run the code in answers to coding questions.")] = False,
    no_record: Annotated[bool, option("--no-record", help="Do not store this attempt in your history "
                                                          "(`mlgrade history`, `stats`, the review schedule).")] = False,
) -> None:
    """Grade one answer against the question's rubric.

    Prints the score and band, a verdict with evidence per key point, misconceptions,
    strengths, what to improve and a follow-up question. The attempt is stored in your
    history like a practice answer (`mlgrade history`, `stats`); --no-record opts out.
    Exit status: 0 graded,
    1 grading failed (grader_error: the endpoint or its replies failed; never a score),
    2 usage or configuration error, including an empty answer (nothing to grade; with
    --json the `skipped` result is still printed).

    Examples:

      mlgrade grade q07 "Use forward chaining: train on the past, test on the next block."

      mlgrade grade q24 --file answer.md --json

      pbpaste | mlgrade grade 13 - --samples 3
    """
    import asyncio

    settings = settings_from(grader=grader, model=model, base_url=base_url, rubrics_dir=rubrics,
                             cache_capabilities=refresh_flag(refresh, no_cache_capabilities),
                             exec_code=False if no_exec else None, judge=judge)
    bank = bank_from(rubrics, settings)
    rubric = bank.get(question_id)
    text = read_answer(answer, file, settings)
    if settings.offline_notice and not json_out and text.strip():
        console(stderr=True).print(f"[dim]{settings.offline_notice}[/]")
    err = console(stderr=True)
    from ..grading import DETERMINISTIC_GRADER

    if samples > 1 and settings.grader_kind == DETERMINISTIC_GRADER:
        sys.stderr.write(f"note: the {DETERMINISTIC_GRADER} grader is deterministic: --samples {samples} would give "
                         f"{samples} identical grades, so it grades once\n")
    if not json_out and rubric.kind == "coding" and rubric.tests and settings.exec_code and text.strip():
        from ..code.sandbox import sandbox_status

        sandbox = sandbox_status(settings.sandbox)
        if sandbox.available and not sandbox.compiled:
            err.print("[dim]First run of the code sandbox: compiling its Python to native code once "
                      "(10–40 s); later runs take well under a second.[/]")
    if not json_out and err.is_terminal and text.strip():
        with err.status(f"grading {rubric.id} with {settings.grader_kind}…"):
            result = asyncio.run(_run(rubric, text, settings, samples, quiet=False))
    else:
        result = asyncio.run(_run(rubric, text, settings, samples, quiet=json_out))
    if not no_record:
        _record(settings, result, text)
    from ..measured import side_figure

    note, figure = side_figure(settings, bank=bank)
    if json_out:
        print_json({**result.model_dump(mode="json"), "expert_agreement": figure})
    else:
        from ..render import render_grade

        render_grade(result, rubric, console())
        if note and result.outcome == "graded":
            err.print(f"[dim]{note}[/]", soft_wrap=True)
    if result.outcome == "skipped":
        if not json_out:
            from ._common import print_error

            print_error(f"{result.error or 'skipped'}: nothing to grade")
        raise typer.Exit(2)
    if result.outcome == "grader_error":
        raise typer.Exit(1)


def _record(settings: Settings, result: Grade, text: str) -> None:
    """A history that cannot be written costs the record, never the grade just made."""
    from ..errors import MlgradeError
    from ..practice.history import record_grade

    try:
        record_grade(settings, result, text)
    except MlgradeError as exc:
        from ..errors import redact
        from ..textfiles import safe_text

        sys.stderr.write(f"warning: not recorded in your history: {safe_text(redact(str(exc)) or '')}\n")


def register(app: typer.Typer) -> None:
    app.command("grade", no_args_is_help=True)(grade_command)

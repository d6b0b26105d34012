"""The `mlgrade` command: a thin typer front over the library.

Command modules live in `mlgrade.commands`; each registers itself on `app` and imports
heavy modules only inside its functions, so `mlgrade --help` starts fast.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from .commands import (batch_cmd, batch_jobs_cmd, doctor_cmd, eval_cmd, grade_cmd, interview_cmd, practice_cmd,
                       questions_cmd, report_cmd, review_cmd, rubrics_cmd)


def _plain_type_labels(command: Any, ctx: Any) -> None:
    """Help shows `--file FILE`, `--limit N`, `--json`, never typer's raw `<str>` / `<bool>`:
    a flag gets no label, a value option its metavar (else the type's name in capitals, as
    click writes it), an argument only its name."""
    helper = command.get_help_option(ctx) if hasattr(command, "get_help_option") else None  # made once, cached
    for param in [*getattr(command, "params", ()), *([helper] if helper is not None else [])]:
        if getattr(param, "_mlgrade_labels", False):
            continue
        if param.param_type_name == "argument":
            label = None
            if param.metavar is None:
                param.metavar = param.name.upper()
        elif getattr(param, "is_flag", False) or getattr(param, "count", False):
            label = None
        elif param.metavar:
            label = param.metavar
        else:
            bare = param.bare_type().lower()
            label = {"str": "TEXT", "int": "N", "float": "NUMBER", "path": "PATH"}.get(bare, bare.upper())
        param.display_type_rich = lambda ctx, label=label: label  # shadows the method for this one parameter
        param._mlgrade_labels = True
    for sub in getattr(command, "commands", {}).values():
        _plain_type_labels(sub, ctx)


class _Group(TyperGroup):
    """Turns mlgrade's own errors into one line on stderr and the contract's exit code, and a
    closed stdout pipe (`mlgrade … | head -1`) into a quiet exit 0, for the real CLI and for
    in-process test runners alike."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        _plain_type_labels(self, ctx)  # before --help can be printed, for every command below too
        return super().parse_args(ctx, args)

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        from .errors import MlgradeError

        try:
            return super().invoke(ctx)
        except MlgradeError as exc:
            from .commands._common import print_error

            print_error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except BrokenPipeError:
            from .commands._common import pipe_closed

            pipe_closed()


def _print_version(value: bool) -> None:
    # eager, with its own callback: runs while parsing, before "Missing command" can be raised
    if value:
        from . import __version__

        typer.echo(f"mlgrade {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="mlgrade",
    cls=_Group,
    help=(
        "Practise and grade machine-learning interview answers against rubrics.\n\n"
        "Examples:\n\n"
        "  mlgrade practice                      # an interactive practice session\n\n"
        "  mlgrade grade q07 \"Use a rolling-origin split…\"\n\n"
        "  mlgrade batch answers.jsonl --out results.jsonl"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)

for module in (practice_cmd, interview_cmd, grade_cmd, batch_cmd, batch_jobs_cmd, report_cmd, review_cmd, questions_cmd, rubrics_cmd,
               eval_cmd, doctor_cmd):
    module.register(app)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", "-V", help="Print the version and exit.", is_eager=True,
                                       callback=_print_version, expose_value=True)) -> None:
    """Practise and grade machine-learning interview answers against rubrics."""


def _quiet_interrupts(unraisable: Any) -> None:
    """A Ctrl-C that lands while Python runs a finaliser (an event loop's __del__, say) cannot be
    raised there, and Python would print "Exception ignored in ... KeyboardInterrupt" with a
    traceback over the terminal the user just quit. The key press is the user's; the report is noise."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        return
    sys.__unraisablehook__(unraisable)


def main() -> None:
    sys.unraisablehook = _quiet_interrupts
    try:
        app(prog_name="mlgrade")  # also under `python -m mlgrade`
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        sys.exit(130)
    except BrokenPipeError:
        from .commands._common import _silence_stdout

        _silence_stdout()
        sys.exit(0)

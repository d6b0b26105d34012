"""The `mlgrade` command: a thin typer front over the library.

Command modules live in `mlgrade.commands`; each registers itself on `app` and imports
heavy modules only inside its functions, so `mlgrade --help` starts fast.
"""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

from .commands import batch_cmd, doctor_cmd, eval_cmd, grade_cmd, practice_cmd, questions_cmd, review_cmd, rubrics_cmd

class _Group(TyperGroup):
    """Turns mlgrade's own errors into one line on stderr and the contract's exit code, for
    the real CLI and for in-process test runners alike."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        from .errors import MlgradeError

        try:
            return super().invoke(ctx)
        except MlgradeError as exc:
            from .commands._common import print_error

            print_error(str(exc))
            raise typer.Exit(exc.exit_code) from None


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

for module in (practice_cmd, grade_cmd, batch_cmd, review_cmd, questions_cmd, rubrics_cmd, eval_cmd, doctor_cmd):
    module.register(app)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True)) -> None:
    if version:
        from . import __version__

        typer.echo(f"mlgrade {__version__}")
        raise typer.Exit()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)

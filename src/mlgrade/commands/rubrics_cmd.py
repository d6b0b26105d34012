"""`mlgrade rubrics validate|derive`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

rubrics_app = typer.Typer(help="Check and create rubrics.", no_args_is_help=True)


@rubrics_app.callback()
def _group() -> None:
    """Check and create rubrics."""


@rubrics_app.command("validate")
def validate(
    directory: Annotated[Optional[Path], typer.Argument(help="Folder of rubric YAML files (default: the built-in bank).", show_default=False)] = None,
) -> None:
    """Validate every rubric in a folder: exit 0 when all are valid, 1 with one line per problem.

    Examples:

      mlgrade rubrics validate

      mlgrade rubrics validate ./my-rubrics
    """
    from ..rubrics import builtin_rubrics_dir, load_dir, validate_dir

    target = directory or builtin_rubrics_dir()
    problems = validate_dir(target)
    if problems:
        for line in problems:
            typer.echo(line, err=True)
        raise typer.Exit(1)
    count = len(load_dir(target)[0])
    typer.echo(f"{count} rubric{'s' if count != 1 else ''} valid in {target}")


@rubrics_app.command("derive")
def derive(
    question: Annotated[str, typer.Option("--question", "-q", help="The question text.", show_default=False)],
    answer: Annotated[Optional[str], typer.Option("--answer", "-a", help="The reference answer text.", show_default=False)] = None,
    answer_file: Annotated[Optional[Path], typer.Option("--answer-file", help="Read the reference answer from a file.", show_default=False)] = None,
    grader: Annotated[Optional[str], typer.Option("--grader", help="offline or llm (default: the configured grader).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the YAML here (default: stdout).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Derive afresh instead of reusing a cached rubric.")] = False,
) -> None:
    """Derive a rubric (valid rubric YAML) from a question and a reference answer, offline or with an LLM.

    Examples:

      mlgrade rubrics derive -q "What is dropout?" -a "Dropout zeroes random units during training..."

      mlgrade rubrics derive -q "What is dropout?" --answer-file ref.txt --grader offline -o my-rubrics/dropout.yaml
    """
    from ..evaluation.derive import derive_rubric, rubric_yaml
    from ..errors import UsageError
    from ..textfiles import MARK_YAML, check_output, read_text, write_output
    from ._common import settings_from

    if (answer is None) == (answer_file is None):
        raise UsageError("give the reference answer with --answer or --answer-file (one of them)")
    if out is not None:  # refused before deriving (an LLM call costs money)
        check_output(out, inputs=(answer_file,))
    if answer_file is not None:
        answer = read_text(answer_file)
    settings = settings_from(grader=grader)  # an unknown grader name is a ConfigError there
    rubric = derive_rubric(question, answer or "", settings=settings, use_cache=not no_cache)
    text = rubric_yaml(rubric)
    if out is None:
        typer.echo(text, nl=False)
        return
    write_output(out, f"{MARK_YAML}\n{text}", inputs=(answer_file,), option="--out")
    typer.echo(f"wrote {rubric.id} ({len(rubric.key_points)} key points) to {out}", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(rubrics_app, name="rubrics")

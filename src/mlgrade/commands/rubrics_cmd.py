"""`mlgrade rubrics validate|derive`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import (
    BaseUrlOpt,
    GraderOpt,
    ModelOpt,
    RefreshOpt,
    file_opt,
    option,
    out_opt,
    refresh_flag,
    settings_from,
)

rubrics_app = typer.Typer(help="Check and create rubrics.", no_args_is_help=True)


@rubrics_app.callback()
def _group() -> None:
    """Check and create rubrics."""


@rubrics_app.command("validate")
def validate(
    directory: Annotated[Optional[Path], typer.Argument(help="Folder of rubric YAML files (default: the built-in bank).",
                                                        metavar="DIR", show_default=False)] = None,
) -> None:
    """Validate every rubric in a folder: exit 0 when all are valid, 1 with one line per problem,
    2 when the folder does not exist. Key-point counts outside the recommended 4–8 are warnings
    (printed, exit 0).

    Examples:

      mlgrade rubrics validate

      mlgrade rubrics validate ./my-rubrics
    """
    from ..errors import UsageError
    from ..rubrics import builtin_rubrics_dir, load_dir, rubric_warnings, validate_dir

    target = directory or builtin_rubrics_dir()
    if not target.exists():
        raise UsageError(f"{target}: no such folder")
    if not target.is_dir():
        raise UsageError(f"{target}: not a folder (give the folder that holds the rubric files)")
    problems = validate_dir(target)
    if problems:
        for line in problems:
            typer.echo(line, err=True)
        raise typer.Exit(1)
    rubrics = load_dir(target)[0]
    for line in rubric_warnings(rubrics.values(), target):
        typer.echo(f"warning: {line}", err=True)
    count = len(rubrics)
    typer.echo(f"{count} rubric{'s' if count != 1 else ''} valid in {target}")


@rubrics_app.command("derive")
def derive(
    question: Annotated[str, option("--question", "-q", metavar="TEXT", help="The question text.")],
    reference: Annotated[Optional[str], option("--reference", "-r", metavar="TEXT", help="The reference answer text.")] = None,
    file: Annotated[Optional[Path], file_opt("Read the reference answer from a UTF-8 text file.", "--answer-file")] = None,
    grader: GraderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    refresh: RefreshOpt = False,
    out: Annotated[Optional[Path], out_opt("Write the YAML here (default: stdout).")] = None,
    no_cache: Annotated[bool, option("--no-cache", help="Derive afresh instead of reusing a cached rubric.")] = False,
    answer: Annotated[Optional[str], option("--answer", "-a", metavar="TEXT", hidden=True,
                                            help="Old name of --reference.")] = None,
) -> None:
    """Derive a rubric (valid rubric YAML) from a question and a reference answer, offline or with an LLM.

    Examples:

      mlgrade rubrics derive -q "What is dropout?" -r "Dropout zeroes random units during training..."

      mlgrade rubrics derive -q "What is dropout?" --file ref.txt --grader offline -o my-rubrics/dropout.yaml
    """
    from ..evaluation.derive import derive_rubric, rubric_yaml
    from ..errors import UsageError
    from ..textfiles import MARK_YAML, check_output, read_text, write_output

    if reference is not None and answer is not None:
        raise UsageError("--answer is the old name of --reference: give one of them")
    reference = reference if reference is not None else answer
    if (reference is None) == (file is None):
        raise UsageError("give the reference answer with --reference TEXT or --file FILE (one of them)")
    if out is not None:  # refused before deriving (an LLM call costs money)
        check_output(out, inputs=(file,))
    # an unknown grader name is a ConfigError there
    settings = settings_from(grader=grader, model=model, base_url=base_url, cache_capabilities=refresh_flag(refresh))
    # bounded like `grade --file`: `--file /dev/zero` stops at the limit + 1 character
    if file is not None:
        reference = read_text(file, max_chars=settings.max_answer_chars)
    elif reference is not None and len(reference) > settings.max_answer_chars:
        raise UsageError(f"the reference answer is {len(reference):,} characters, over the limit of "
                         f"{settings.max_answer_chars:,} (set MLGRADE_MAX_ANSWER_CHARS to change it)")
    rubric = derive_rubric(question, reference or "", settings=settings, use_cache=not no_cache)
    text = rubric_yaml(rubric)
    if out is None:
        typer.echo(text, nl=False)
        return
    write_output(out, f"{MARK_YAML}\n{text}", inputs=(file,), option="--out")
    typer.echo(f"wrote {rubric.id} ({len(rubric.key_points)} key points) to {out}", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(rubrics_app, name="rubrics")

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


def register(app: typer.Typer) -> None:
    app.add_typer(rubrics_app, name="rubrics")

"""Helpers shared by the command modules: options, settings, output. No grading logic here."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from ..config import Settings
    from ..rubrics import RubricBank

RubricsOpt = Annotated[
    Optional[Path],
    typer.Option("--rubrics", help="Folder of extra rubrics (extends the built-in bank; same ids replace). Env: MLGRADE_RUBRICS.",
                 show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def print_error(message: str) -> None:
    """One line on stderr, prefixed `error:`; never a traceback."""
    from ..errors import redact

    from ..textfiles import safe_text

    message = redact(message) or ""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    first = safe_text(first)  # an error can quote input (an id, a cell): no control codes to the terminal
    sys.stderr.write(f"error: {first}\n")


def settings_from(**flags: Any) -> Settings:
    from ..config import load_settings

    return load_settings(**{k: (str(v) if isinstance(v, Path) else v) for k, v in flags.items()})


def bank_from(rubrics: Path | None, settings: Settings | None = None) -> RubricBank:
    from ..rubrics import load_rubrics

    return load_rubrics(rubrics if rubrics is not None else (settings.rubrics_dir if settings else None))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")

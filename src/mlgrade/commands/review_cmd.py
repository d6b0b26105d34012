"""`mlgrade review RESULTS.jsonl`: a person checks the doubtful grades; a thin front over
mlgrade.batch.reviews (the queue and the decisions file) and commands.review_tui (the screen)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import RubricsOpt, bank_from, console

ReviewsOpt = Annotated[Optional[Path], typer.Option(
    "--reviews", help="Decisions file (default: beside the results, RESULTS.reviews.jsonl).", show_default=False)]


def review_command(
    results: Annotated[Path, typer.Argument(help="A results file written by `mlgrade batch`.", show_default=False)],
    reviews: ReviewsOpt = None,
    reviewer: Annotated[Optional[str], typer.Option("--reviewer", help="Name recorded with each decision (default: your login name).",
                                                    show_default=False)] = None,
    rubrics: RubricsOpt = None,
) -> None:
    """Review batch grades in the terminal, flagged ones first (see `review.reasons` in the results).

    Each screen shows the question, the answer with its evidence highlighted, the judgments and
    why the grade was flagged. Keys: a accept mlgrade's grade, o set your own score (0-100) or
    band with an optional note, s skip, b back, q quit. Every decision is appended to
    RESULTS.reviews.jsonl at once, so quitting loses nothing; reopening shows what is still
    unreviewed first. `mlgrade report` shows your scores beside mlgrade's, and
    `mlgrade eval RESULTS --reviews RESULTS.reviews.jsonl` measures how far mlgrade agrees with you.

    Examples:

      mlgrade review results.jsonl

      mlgrade review results.jsonl --reviews team/alice.reviews.jsonl --reviewer alice
    """
    from ..errors import UsageError

    if not sys.stdin.isatty() or not sys.stdout.isatty():
        raise UsageError("review needs a terminal; to read the flags from a script use "
                         "`mlgrade report RESULTS --needs-review` or the `review` field of each results line")
    from ..batch.reviews import ReviewSession
    from .review_tui import run_review

    session = ReviewSession(results, reviews=reviews, bank=bank_from(rubrics), reviewer=reviewer)
    with session.exclusive():
        for line in session.warnings():
            sys.stderr.write(f"warning: {line}\n")
        run_review(session, console())


def register(app: typer.Typer) -> None:
    app.command("review", no_args_is_help=True)(review_command)

"""`mlgrade report`: render a batch results file (thin front over mlgrade.batch.report and
mlgrade.batch.gradebook)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import JsonOpt, RubricsOpt, bank_from, console, option, out_opt, print_json, settings_from

def report(
    results: Annotated[Path, typer.Argument(help="A results file written by `mlgrade batch`.", metavar="RESULTS",
                                            show_default=False)],
    # no short letter: -f is --file on every command
    fmt: Annotated[str, option("--format", metavar="FORMAT", show_default=True,
                               help="md, html, csv (one row per answer) or gradebook (one row per candidate; XLSX "
                                    "when --out ends in .xlsx).")] = "md",
    out: Annotated[Optional[Path], out_opt("Write here instead of stdout.")] = None,
    title: Annotated[Optional[str], option("--title", metavar="TEXT", help="Report title.")] = None,
    needs_review: Annotated[bool, option("--needs-review", help="List only the grades flagged for review.")] = False,
    reviews: Annotated[Optional[Path], option(
        "--reviews", metavar="FILE",
        help="Reviewer decisions to show beside mlgrade's grades (default: RESULTS.reviews.jsonl if present).")] = None,
    rubrics: RubricsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Render a report of batch results: the grades flagged for review first (with the reviewer's
    score beside mlgrade's once `mlgrade review` has been run), then per question and per
    candidate (mean, band distribution, most-missed key points) and each answer's feedback.

    Examples:

      mlgrade report results.jsonl > report.md

      mlgrade report results.jsonl --needs-review

      mlgrade report results.jsonl --format html --out report.html

      mlgrade report results.jsonl --format csv --out scores.csv

      mlgrade report results.jsonl --format gradebook --out gradebook.xlsx

      mlgrade report results.jsonl --json            # the counts as data, for scripts
    """
    import sys

    if json_out:
        from ..batch.report import report_data

        print_json(report_data(results, needs_review_only=needs_review,
                               warn=lambda message: sys.stderr.write(f"warning: {message}\n")))
        return

    if fmt.lower() == "gradebook":
        from ..batch.gradebook import write_gradebook

        bank = bank_from(rubrics, settings_from(rubrics_dir=rubrics))
        result = write_gradebook(results, out, reviews=reviews, known=set(bank.rubrics),
                                 warn=lambda message: sys.stderr.write(f"warning: {message}\n"))
    else:
        from ..batch.report import write_report

        result = write_report(results, fmt.lower(), out, title, needs_review_only=needs_review, reviews=reviews,
                              warn=lambda message: sys.stderr.write(f"warning: {message}\n"))
    if out is None:
        # stdout reaches a terminal through pipes too (| head, | less -R): a candidate's control codes are
        # always shown as escapes there; --out keeps the text as written
        from ..textfiles import safe_text

        sys.stdout.write(safe_text(result))
    else:
        console(stderr=True).print(f"wrote {result}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)

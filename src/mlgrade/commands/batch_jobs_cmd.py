"""`mlgrade batch-status` and `batch-collect`: jobs submitted to the OpenAI Batch API with
`mlgrade batch --provider-batch` (thin fronts over mlgrade.batch.provider)."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import JsonOpt, console, print_json, settings_from

JobIdArg = Annotated[str, typer.Argument(help="The job id printed by `batch --provider-batch` (mlg-…).", metavar="JOB",
                                         show_default=False)]


def batch_status(batch_id: JobIdArg,
                 json_out: JsonOpt = False) -> None:
    """Show the state of a Batch API job submitted with `mlgrade batch --provider-batch`.

    Examples:

      mlgrade batch-status mlg-20250101-120000-ab12cd

      mlgrade batch status mlg-20250101-120000-ab12cd --json
    """
    from ..batch.provider import status

    info = status(batch_id, settings=settings_from())
    if json_out:
        print_json(info)
        return
    console().print(info["message"])


def batch_collect(batch_id: JobIdArg,
                  json_out: JsonOpt = False) -> None:
    """Download a finished Batch API job's results into its --out file (same lines as online grading).

    Validation, evidence checks and scoring are applied exactly as online; lines that failed
    become `grader_error`. Safe to run again: ids already in the output are not written twice.

    Examples:

      mlgrade batch-collect mlg-20250101-120000-ab12cd

      mlgrade batch collect mlg-20250101-120000-ab12cd --json
    """
    from ..batch.provider import collect

    info = collect(batch_id, settings=settings_from())
    if json_out:
        print_json(info)
    else:
        console().print(info["message"])
    raise typer.Exit(info.get("exit_code", 0))


def register(app: typer.Typer) -> None:
    app.command("batch-status")(batch_status)
    app.command("batch-collect")(batch_collect)

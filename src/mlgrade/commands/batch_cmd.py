"""`mlgrade batch`: a thin front over mlgrade.batch.engine (and mlgrade.batch.provider for
--provider-batch). What it prints is in batch_render.py; `batch-status`/`batch-collect` are in
batch_jobs_cmd.py, `report` in report_cmd.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ._common import (
    BaseUrlOpt,
    GraderOpt,
    JsonOpt,
    ModelOpt,
    RefreshOpt,
    RubricsOpt,
    bank_from,
    command_line,
    concurrency_opt,
    console,
    option,
    out_opt,
    print_json,
    refresh_flag,
    settings_from,
)
from .batch_jobs_cmd import batch_collect, batch_status
from .batch_render import ProgressBar, print_estimate, print_mapping, print_summary

if TYPE_CHECKING:
    from ..batch.columns import WideMapping, WideOptions

_PROVIDER_ACTIONS = ("status", "collect")
MapOpt = Annotated[Optional[list[str]], typer.Option(
    "--map", help="Wide files: map a column to a question, COLUMN=QUESTION_ID (repeatable; COLUMN=- ignores it; "
    "#N names column N, for two columns under one header).",
    show_default=False)]
MapFileOpt = Annotated[Optional[Path], typer.Option(
    "--map-file", help="Wide files: a YAML mapping of column header to question id ('Response 3: q07').",
    show_default=False)]
CandidateColOpt = Annotated[Optional[str], typer.Option(
    "--candidate-column", help="Wide files: the column naming the candidate (default: email, username, name, "
                               "first + last name or ID, found by header).", show_default=False)]
StrictOpt = Annotated[bool, typer.Option(
    "--strict", help="Wide files: an unmatched column that looks like free-text answers is an error, not a warning.")]
SheetOpt = Annotated[Optional[str], option(
    "--sheet", metavar="NAME|N", help="XLSX files: the sheet to read, by name or number from 1 (default: the first "
                                      "whose header has question columns).")]
ThresholdOpt = Annotated[float, typer.Option(
    "--match-threshold", help="Wide files: fuzzy score (0-100) a column header needs to match a question's text.")]


def _wide_options(maps: list[str] | None, map_file: Path | None, candidate_column: str | None, strict: bool,
                  threshold: float, sheet: str | None = None) -> WideOptions:
    from ..batch.columns import WideOptions, load_map_file, parse_map_args

    mapping = load_map_file(map_file) if map_file is not None else {}
    mapping.update(parse_map_args(maps))  # --map on the command line wins over the file
    return WideOptions(mapping=mapping, candidate_column=candidate_column, strict=strict, threshold=threshold,
                       sheet=sheet)


def _interrupted(ctx: typer.Context, out: Path) -> None:
    """Ctrl-C: every finished result is already a flushed line in --out; say how many, and the
    command that carries on from there (the same command, every option kept). Exit 130, as for
    any interrupted command."""
    import shlex

    from ..batch.engine import results_in

    kept = results_in(out)
    sys.stderr.write(f"\ninterrupted: {kept:,} result{'s' if kept != 1 else ''} safe in {out}; "
                     f"resume with: {shlex.join(command_line(ctx, 'mlgrade batch'))}\n")
    raise typer.Exit(130)


def batch(
    ctx: typer.Context,
    inputs: Annotated[list[Path], typer.Argument(help="Answer files (.jsonl, .csv, .yaml; wide form/quiz exports as .csv or .xlsx) "
                                                      "or folders of qNN-name.md/.txt files.",
                                                 metavar="INPUTS...", show_default=False)],
    out: Annotated[Optional[Path], out_opt("Results file (JSON Lines). Rerunning the same command resumes it.")] = None,
    concurrency: Annotated[int, concurrency_opt()] = 8,
    retry_errors: Annotated[bool, option("--retry-errors", help="Regrade the rows of --out that ended in grader_error.")] = False,
    regrade_stale: Annotated[bool, option("--regrade-stale", help="Regrade the rows of --out graded on an older version of their rubric.")] = False,
    no_cache: Annotated[bool, option("--no-cache", help="Do not reuse cached results for identical answers.")] = False,
    dry_run: Annotated[bool, option("--dry-run", help="Count answers, estimate tokens and cost; make no call.")] = False,
    provider_batch: Annotated[bool, option("--provider-batch", help="Submit to the OpenAI Batch API (half price, results within 24 h).")] = False,
    maps: MapOpt = None,
    map_file: MapFileOpt = None,
    candidate_column: CandidateColOpt = None,
    strict: StrictOpt = False,
    match_threshold: ThresholdOpt = 85.0,
    sheet: SheetOpt = None,
    grader: GraderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    refresh: RefreshOpt = False,
    rubrics: RubricsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Grade every answer in one or more files; one JSON result per line in --out.

    Inputs: JSONL/CSV/YAML rows with `question_id`, `answer`, optional `id` and `candidate`,
    or a folder of files named after the question (`q07-alice.md`). Bad rows are written as
    `skipped` with the reason. Exit codes: 0 when this run skipped nothing and no grader error
    is left in --out; 1 when this run skipped answers (empty, too long, unknown question) or a
    grader error is left (rerun with --retry-errors); 2 on usage errors; 130 when interrupted.
    Skips an earlier run reported do not count again: a rerun with nothing new exits 0.

    Wide files (form and quiz exports, .csv or .xlsx: one row per candidate, one column per
    question) are detected when the header has no `question_id`/`answer`. Columns match
    questions by id (`q07`, `Question 7`), by the question's text (fuzzy, --match-threshold),
    or by --map; the candidate comes from an email/name/username/ID column or
    --candidate-column; each answer's id is `<candidate>/<question>`. Use --dry-run to see
    the mapping before grading.

    Examples:

      mlgrade batch answers.jsonl --out results.jsonl

      mlgrade batch answers.csv submissions/ --out results.jsonl --concurrency 16

      mlgrade batch answers.jsonl --out results.jsonl --retry-errors   # regrade failed rows

      mlgrade batch answers.jsonl --out results.jsonl --regrade-stale  # regrade rows graded on an older rubric

      mlgrade batch answers.jsonl --out results.jsonl --dry-run        # count and estimate cost

      mlgrade batch answers.jsonl --out results.jsonl --provider-batch # OpenAI Batch API, half price

      mlgrade batch form-export.csv --out results.jsonl --dry-run      # show the column → question mapping

      mlgrade batch quiz.xlsx --out results.jsonl --map "Response 1=q07" --map "Response 2=q12"

      mlgrade batch status mlg-20250101-120000-ab12cd     # same as `mlgrade batch-status …`

      mlgrade batch collect mlg-20250101-120000-ab12cd    # same as `mlgrade batch-collect …`
    """
    from ..errors import UsageError

    if inputs and str(inputs[0]) in _PROVIDER_ACTIONS and not inputs[0].exists():
        if len(inputs) != 2:
            raise UsageError(f"usage: mlgrade batch {inputs[0]} BATCH_ID")
        action = batch_status if str(inputs[0]) == "status" else batch_collect
        return action(str(inputs[1]), json_out=json_out)  # type: ignore[operator]
    if out is None:
        raise UsageError("--out RESULTS.jsonl is required (it is also what makes a rerun resume)")
    from ..batch.inputs import check_inputs
    from ..batch.output import ResultsLock, check_results_path

    paths = check_inputs(inputs)  # a missing file fails now, before any progress bar or request
    if not provider_batch:  # --out: a directory, device, read-only or full place, not ours, or in use: refused now
        check_results_path(out)
        if not dry_run:
            ResultsLock(out).acquire().release()  # the run takes it again for good
    settings = settings_from(grader=grader, model=model, base_url=base_url, rubrics_dir=rubrics,
                             cache_capabilities=refresh_flag(refresh))
    bank = bank_from(rubrics, settings)
    wide = _wide_options(maps, map_file, candidate_column, strict, match_threshold, sheet)
    wide.check(bank)  # a --map to an unknown question fails before anything is read
    from ..batch.wide import check_wide_options

    check_wide_options(paths, wide)  # --map on long files only would be silently ignored
    mappings = _inspect_wide(paths, bank, wide, show=not json_out, to_stdout=dry_run)
    from ..batch.inputs import check_starts

    check_starts(paths, bank)  # an unreadable CSV header or a YAML file that is no list: one line, no progress bar
    if provider_batch:
        from ..batch.provider import submit

        job = submit(inputs, out, settings=settings, bank=bank, dry_run=dry_run, wide=wide)
        if json_out:
            print_json(job)
        else:
            console().print(job.get("message", ""))
        raise typer.Exit(0)

    from ..batch.engine import grade_many

    if not dry_run and (not no_cache or settings.grader_kind == "llm"):
        from ..store import Store

        Store.for_settings(settings).close()  # an unusable MLGRADE_HOME or damaged store: one line before any progress

    if settings.offline_notice and not json_out:
        console(stderr=True).print(f"[dim]{settings.offline_notice}[/]")
    from ..measured import side_figure

    note, figure = side_figure(settings, bank=bank)
    if note and not json_out and not dry_run:
        console(stderr=True).print(f"[dim]{note}[/]", soft_wrap=True)
    kwargs: dict[str, Any] = dict(settings=settings, bank=bank, concurrency=concurrency, retry_errors=retry_errors,
                                  use_cache=not no_cache, dry_run=dry_run, wide=wide, regrade_stale=regrade_stale)
    if dry_run:
        summary = grade_many(inputs, out, **kwargs)
    else:
        try:
            with ProgressBar() as bar:
                summary = grade_many(inputs, out, progress=bar, **kwargs)
        except KeyboardInterrupt:
            _interrupted(ctx, out)
    if json_out:
        data = summary.to_dict()
        data["expert_agreement"] = figure
        if mappings:
            data["wide"] = [m.to_dict() for m in mappings]
        print_json(data)
    elif dry_run:
        print_estimate(summary)
    else:
        print_summary(summary)
    raise typer.Exit(summary.exit_code)


def _inspect_wide(paths: list[Path], bank: Any, wide: WideOptions, *, show: bool, to_stdout: bool) -> list[WideMapping]:
    """Read each wide input once to show its mapping before any grading (and to refuse, with
    --strict, a column that looks like answers but matches no question)."""
    from ..batch.wide import inspect_wide, is_wide

    mappings = [inspect_wide(p, bank, wide) for p in paths if is_wide(p)]
    if show:
        for m in mappings:
            print_mapping(m, sys.stdout if to_stdout else sys.stderr)
    return mappings


def register(app: typer.Typer) -> None:
    app.command("batch")(batch)

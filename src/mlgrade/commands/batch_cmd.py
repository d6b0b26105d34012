"""`mlgrade batch`, `batch-status`, `batch-collect` and `report`: thin fronts over mlgrade.batch.engine,
mlgrade.batch.provider and mlgrade.batch.report."""

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
    concurrency_opt,
    console,
    option,
    out_opt,
    print_json,
    refresh_flag,
    settings_from,
)

if TYPE_CHECKING:
    from ..batch.progress import BatchProgress, BatchSummary
    from ..batch.columns import WideMapping, WideOptions

_PROVIDER_ACTIONS = ("status", "collect")
MapOpt = Annotated[Optional[list[str]], typer.Option(
    "--map", help="Wide files: map a column to a question, COLUMN=QUESTION_ID (repeatable; COLUMN=- ignores it).",
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


class _ProgressBar:
    """A rich progress bar on stderr: done / errors / in flight / rate / ETA / cached tokens."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]grading"), BarColumn(), MofNCompleteColumn(),
            TextColumn("[red]{task.fields[errors]} err[/] · {task.fields[skipped]} skip · {task.fields[flight]} in flight · "
                       "{task.fields[rate]} answers/s · {task.fields[cached]} cached tok"),
            TimeRemainingColumn(), console=console(stderr=True), transient=False, refresh_per_second=8)
        self.task = self.progress.add_task("grading", total=None, errors=0, skipped=0, flight="0", rate="0.0", cached=0)

    def __enter__(self) -> _ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, p: BatchProgress) -> None:
        rate = p.rate
        flight = f"{p.in_flight}/{p.limit}" + (f" ({p.rate_limits}×429)" if p.rate_limits else "")
        self.progress.update(self.task, total=p.total or None, completed=p.done, errors=p.errors, skipped=p.skipped,
                             flight=flight, rate=f"{rate:.1f}", cached=f"{p.usage.cached_tokens:,}")


def _print_summary(summary: BatchSummary) -> None:
    from rich.table import Table

    from ..textfiles import safe_text

    out = console()
    err = console(stderr=True)
    r = summary.run
    for line in summary.skipped_examples:  # plain lines, never wrapped: file:line must stay greppable
        sys.stderr.write(f"skipped {safe_text(line)}\n")
    hidden = r.skipped - len(summary.skipped_examples)
    if hidden > 0:
        err.print(f"[yellow]… and {hidden:,} more skipped (see the output file)[/]")
    if summary.recovery.get("truncated_bytes"):
        err.print("[dim]resume: dropped a partial last line left by an interrupted run[/]")
    _print_resume_notes(summary)
    res = summary.results
    if res is None:
        return
    from rich import box

    table = Table(title=f"{summary.out}", header_style="bold", box=box.SIMPLE_HEAD)
    table.add_column("question", no_wrap=True)
    for col in ("answers", "mean", "strong", "adeq.", "weak", "poor", "errors", "skipped"):
        table.add_column(col, justify="right", no_wrap=True)
    for q, g in sorted(res.questions.items()):
        table.add_row(q, str(g.count), "–" if g.mean is None else f"{g.mean:g}",
                      *(str(g.bands.get(b, 0)) for b in ("strong", "adequate", "weak", "poor")), str(g.errors), str(g.skipped))
    out.print(table)
    out.print(f"this run: {r.done:,} written ({r.graded:,} graded, {r.errors:,} errors, {r.skipped:,} skipped, "
              f"{r.cache_hits:,} from cache) in {r.elapsed:.1f}s, {r.rate:.1f} answers/s; "
              f"{summary.already_done:,} already done")
    if r.rate_limits:
        out.print(f"rate limited {r.rate_limits:,}× (429): concurrency lowered to {summary.min_concurrency} at worst")
    out.print(f"all results: {res.total:,} answers · tokens {res.input_tokens:,} in ({res.cached_tokens:,} cached) / "
              f"{res.output_tokens:,} out · cost ≈ ${res.cost_usd:.4f}")
    if res.needs_review:
        reasons = ", ".join(f"{r} {n}" for r, n in res.review_reasons.most_common())
        out.print(f"[yellow]{res.needs_review:,} grades need review[/] ({reasons}): `mlgrade review {summary.out}` "
                  f"or `mlgrade report {summary.out} --needs-review`")


def _print_resume_notes(summary: BatchSummary) -> None:
    """What a rerun changed in or noticed about the results file: plain stderr lines (greppable)."""
    w = sys.stderr.write
    for line in summary.corrupt:
        w(f"warning: {line}\n")
    rec = summary.recovery
    if rec.get("backup"):
        parts = [f"{rec[k]:,} {what}" for k, what in (("corrupt_lines", "corrupt"), ("dropped_errors", "grader_error"),
                                                      ("dropped_duplicates", "superseded")) if rec.get(k)]
        w(f"rewrote {summary.out}: dropped {rec.get('dropped_lines', 0):,} line(s) ({', '.join(parts)}); "
          f"the original is kept as {rec['backup']}\n")
    if summary.regraded_changed:
        w(f"regraded {summary.regraded_changed:,} result(s) because the answer changed (the new line counts)\n")
    if summary.regraded_skipped:
        w(f"graded {summary.regraded_skipped:,} previously skipped answer(s) now that the input has one\n")
    if summary.stale_rubric:
        done = (f"{summary.regraded_stale:,} regraded" if summary.regraded_stale
                else "kept; rerun with --regrade-stale to regrade them")
        w(f"warning: {summary.stale_rubric:,} result(s) were graded on an older version of their rubric ({done})\n")


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_mapping(m: WideMapping, stream: Any) -> None:
    """The column → question mapping of a wide file, one plain line each (greppable, never wrapped)."""
    from ..textfiles import safe_text

    def w(text: str) -> None:  # headers and warnings quote the file's own text: no control codes out
        stream.write(safe_text(text))

    w(f"{m.path}" + (f" (sheet {m.sheet!r})" if m.sheet else "")
      + f": wide file (one row per candidate): {m.rows:,} rows, {len(m.questions)} question columns, "
      f"{m.answers:,} answers" + (f", {m.empty:,} empty (skipped: no answer)" if m.empty else "")
      + (f", {m.bad_rows:,} unreadable rows" if m.bad_rows else "") + "\n")
    w(f"  candidate  ← {m.candidate_label!r}" + (f" ({m.candidate_how})" if m.candidate_how else "") + "\n")
    for c in m.questions:
        score = f" {c.score:g}" if c.score is not None else ""
        w(f"  column {c.index + 1:<3} {_short(repr(c.header)):<62} → {c.question_id}  ({c.how}{score}; "
          f"answers: {c.answers:,})\n")
    others = [m.columns[i] for i in range(len(m.columns))
              if m.columns[i].role == "identity" and i not in m.candidate_columns]
    if others:
        w("  identity (not used): " + ", ".join(repr(c.header) for c in others) + "\n")
    if m.ignored:
        w("  ignored: " + ", ".join(f"{_short(repr(c.header), 40)} ({c.how or 'no match'})" for c in m.ignored) + "\n")
    for warning in m.warnings:
        w(f"  warning: {warning}\n")


def _wide_options(maps: list[str] | None, map_file: Path | None, candidate_column: str | None, strict: bool,
                  threshold: float, sheet: str | None = None) -> WideOptions:
    from ..batch.columns import WideOptions, load_map_file, parse_map_args

    mapping = load_map_file(map_file) if map_file is not None else {}
    mapping.update(parse_map_args(maps))  # --map on the command line wins over the file
    return WideOptions(mapping=mapping, candidate_column=candidate_column, strict=strict, threshold=threshold,
                       sheet=sheet)


def _interrupted(inputs: list[Path], out: Path, flags: dict[str, Any]) -> None:
    """Ctrl-C: every finished result is already a flushed line in --out; say how many, and the
    command that carries on from there. Exit 130, as for any interrupted command."""
    import shlex

    from ..batch.engine import results_in

    args = ["mlgrade", "batch", *map(str, inputs), "--out", str(out)]
    for name, value in flags.items():
        if value is not None:
            args += [f"--{name.replace('_', '-')}", str(value)]
    kept = results_in(out)
    sys.stderr.write(f"\ninterrupted: {kept:,} result{'s' if kept != 1 else ''} safe in {out}; "
                     f"resume with: {shlex.join(args)}\n")
    raise typer.Exit(130)


def _print_estimate(summary: BatchSummary) -> None:
    from ..textfiles import safe_text

    est = summary.estimate or {}
    out = console()
    for line in summary.skipped_examples:
        sys.stderr.write(f"would skip {safe_text(line)}\n")
    out.print(f"dry run: {est.get('items', 0):,} answers to grade ({summary.already_done:,} already in {summary.out}, "
              f"{summary.run.total - est.get('items', 0):,} to skip) with the {est.get('grader')} grader")
    if est.get("grader") == "llm":
        cost = est.get("cost_usd")
        batch_cost = est.get("cost_usd_batch_api")
        out.print(f"estimated tokens: ~{est['input_tokens']:,} in / ~{est['output_tokens']:,} out with {est['model']}; "
                  + (f"cost ≈ ${cost:.4f} (≈ ${batch_cost:.4f} with --provider-batch)" if cost is not None
                     else "price unknown for this model"))
    out.print("no request was made")


def batch(
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
    `skipped` with the reason. Exit code 0 when every answer is graded, 1 when some ended in
    error or were skipped, 2 on usage errors.

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
    kwargs: dict[str, Any] = dict(settings=settings, bank=bank, concurrency=concurrency, retry_errors=retry_errors,
                                  use_cache=not no_cache, dry_run=dry_run, wide=wide, regrade_stale=regrade_stale)
    if dry_run:
        summary = grade_many(inputs, out, **kwargs)
    else:
        try:
            with _ProgressBar() as bar:
                summary = grade_many(inputs, out, progress=bar, **kwargs)
        except KeyboardInterrupt:
            _interrupted(inputs, out, dict(grader=grader, model=model, base_url=base_url, rubrics=rubrics,
                                           concurrency=None if concurrency == 8 else concurrency))
    if json_out:
        data = summary.to_dict()
        if mappings:
            data["wide"] = [m.to_dict() for m in mappings]
        print_json(data)
    elif dry_run:
        _print_estimate(summary)
    else:
        _print_summary(summary)
    raise typer.Exit(summary.exit_code)


def _inspect_wide(paths: list[Path], bank: Any, wide: WideOptions, *, show: bool, to_stdout: bool) -> list[WideMapping]:
    """Read each wide input once to show its mapping before any grading (and to refuse, with
    --strict, a column that looks like answers but matches no question)."""
    from ..batch.wide import inspect_wide, is_wide

    mappings = [inspect_wide(p, bank, wide) for p in paths if is_wide(p)]
    if show:
        for m in mappings:
            _print_mapping(m, sys.stdout if to_stdout else sys.stderr)
    return mappings


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
    """
    import sys

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
        if sys.stdout.isatty():  # a CSV shown on a terminal must not carry a candidate's control codes
            from ..textfiles import safe_text

            result = safe_text(result)
        sys.stdout.write(str(result))
    else:
        console(stderr=True).print(f"wrote {result}")


def register(app: typer.Typer) -> None:
    app.command("batch")(batch)
    app.command("batch-status")(batch_status)
    app.command("batch-collect")(batch_collect)
    app.command("report")(report)

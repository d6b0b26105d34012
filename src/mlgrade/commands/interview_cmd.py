"""`mlgrade interview`: a thin front over mlgrade.practice.interview (the library),
interview_tui (the terminal) and interview_report (the report file)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import (
    BaseUrlOpt,
    GraderOpt,
    JsonOpt,
    ModelOpt,
    RefreshOpt,
    RubricsOpt,
    bank_from,
    console,
    limit_opt,
    option,
    print_json,
    refresh_flag,
    require_grader_ready,
    settings_from,
)

# the same name, letter and help as every other --section (tests/test_cli_options.py); repeatable here
SectionsOpt = Annotated[Optional[list[str]], option(
    "--section", "-s", metavar="NAME",
    help="Only this section (basic, technical, computer-vision, nlp, reinforcement-learning, company).")]


def interview(
    questions: Annotated[int, option("--questions", metavar="N", min=1, max=25, show_default=True,
                                     help="How many questions, each with a follow-up.")] = 5,
    section: SectionsOpt = None,
    fresh: Annotated[bool, option("--fresh", help="Ignore your history: no weighting towards your weak areas.")] = False,
    minutes: Annotated[Optional[float], option("--minutes", metavar="M", min=0.1,
                                               help="Time for the whole interview (default 6 per question); "
                                                    "each question gets an equal share. A soft budget: "
                                                    "going over is noted, never cut off.")] = None,
    seed: Annotated[Optional[int], option("--seed", metavar="N", help="Draw the same questions again (for the same history, or always with --fresh).")] = None,
    feedback: Annotated[str, option("--feedback", metavar="WHEN", show_default=True,
                                    help="end: grades only on the end screen, like a real interview; now: each "
                                         "grade as soon as the answer is in.")] = "end",
    report: Annotated[Optional[Path], option("--report", metavar="PATH",
                                             help="Write the report here (.md or .html). Default: a Markdown file "
                                                  "under MLGRADE_HOME/interviews (its path is printed).")] = None,
    resume: Annotated[bool, option("--resume", help="Continue the last interview left unfinished.")] = False,
    grader: GraderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    refresh: RefreshOpt = False,
    rubrics: RubricsOpt = None,
) -> None:
    """A mock interview: several questions in a row, each followed by the interviewer's follow-up
    on the weakest part of your answer, a clock, and a verdict at the end.

    Questions are drawn across sections (`--section` is repeatable), weighted towards your weak
    areas from history unless `--fresh`. While you type, the bottom line shows the time spent
    against the question's share of `--minutes`. Grades stay hidden until the end screen (unless
    `--feedback now`): each question's main and follow-up scores, time, what you missed, a verdict
    (strong hire / hire / lean no hire / no hire) with the rule behind it, and what to study next;
    the same goes to a report file. Every answer is kept in `mlgrade history`.

    Keys while answering: Enter = new line, Ctrl-D = submit, Ctrl-C = skip the question, end the
    interview (what was graded is kept and reported) or carry on.

    Examples:

      mlgrade interview

      mlgrade interview --questions 3 --minutes 15 --section nlp --section technical

      mlgrade interview --fresh --seed 7 --report interview.html

      mlgrade interview --resume
    """
    from ..errors import UsageError

    if not sys.stdin.isatty():
        raise UsageError("interview needs a terminal; to grade answers from a script use "
                         "`mlgrade grade QID --file F` or `mlgrade batch`")
    from ..rubrics import check_section

    for s in section or []:
        check_section(s)
    from ..grading import make_grader
    from ..practice.interview import Interview, InterviewOptions
    from ..practice.interview_report import check_report_path, default_report_path, write_report
    from ..practice.interview_tui import render_end_screen, run_interview
    from ..store import Store

    options = InterviewOptions(questions=questions, sections=list(section or []), fresh=fresh, minutes=minutes,
                               seed=seed, feedback=feedback.lower())
    if report is not None:
        check_report_path(report)  # now, not after the last answer
    settings = settings_from(grader=grader, model=model, base_url=base_url, rubrics_dir=rubrics,
                             cache_capabilities=refresh_flag(refresh))
    require_grader_ready(settings)
    bank = bank_from(rubrics, settings)
    out = console()
    with Store.for_settings(settings) as store:
        grading = make_grader(settings)
        if resume:
            session = Interview.resume(store, bank, grader=grading, settings=settings)
            done = sum(1 for q in session.questions if q["status"] in ("done", "skipped"))
            out.print(f"Resuming interview {session.id}: {done} of {len(session.questions)} questions done.")
            if report is not None:
                session.state["report"] = str(report)
        else:
            session = Interview.start(store, bank, options, grader=grading, settings=settings,
                                      report=str(report) if report is not None else None)
            unfinished = [r for r in store.interview_rows(status="open", limit=2) if r["id"] != session.id]
            if unfinished:
                out.print(f"[dim]An earlier interview ({unfinished[0]['id']}) is unfinished: "
                          "`mlgrade interview --resume` continues it.[/]")
        if settings.offline_notice:
            out.print(f"[dim]{settings.offline_notice}[/]")
        result = run_interview(session, out)
        if not result.asked:
            out.print("[dim]No question was answered: no verdict and no report.[/]")
            return
        target = session.state.get("report") or default_report_path(settings.home, session.id)
        try:
            written = write_report(result, bank.rubrics, target)
        except UsageError as exc:  # e.g. the folder went away meanwhile: the answers are kept anyway
            written = None
            out.print(f"[red]error:[/] the report could not be written: {exc}")
        if written is not None:
            result = session.finish(ended=result.status == "ended", report_path=str(written))
        render_end_screen(result, out)
        if written is not None:
            out.print(f"Report: {written}")
        if result.status == "open":
            out.print("[dim]`mlgrade interview --resume` continues it.[/]")


def interviews(
    interview_id: Annotated[Optional[str], typer.Argument(
        help="Show this interview again (its id, or the start of it).", metavar="ID", show_default=False)] = None,
    limit: Annotated[int, limit_opt("How many recent interviews.", show_default=True)] = 20,
    json_out: JsonOpt = False,
    rubrics: RubricsOpt = None,
) -> None:
    """Your mock interviews, newest first; with an ID, that interview's end screen again.

    Examples:

      mlgrade history interviews

      mlgrade history interviews 3f2a9c

      mlgrade history interviews 3f2a9c --json
    """
    from ..practice.interview import list_interviews, load_result
    from ..practice.interview_tui import render_end_screen
    from ..store import Store

    settings = settings_from(rubrics_dir=rubrics)
    with Store.for_settings(settings) as store:
        if interview_id:
            result = load_result(store, bank_from(rubrics, settings), interview_id)
        else:
            rows = list_interviews(store, limit=limit)
    if interview_id:
        if json_out:
            print_json(result.to_dict())
            return
        out = console()
        render_end_screen(result, out)
        if result.report_path:
            out.print(f"Report: {result.report_path}")
        if result.status == "open":
            out.print("[dim]Unfinished: `mlgrade interview --resume` continues it.[/]")
        out.print("[dim]`mlgrade history show N` shows one answer in full (N = its attempt number in `mlgrade history`).[/]")
        return
    if json_out:
        from dataclasses import asdict

        print_json([asdict(r) for r in rows])
        return
    out = console()
    if not rows:
        out.print("No interviews yet. Start one with `mlgrade interview`.")
        return
    from rich.table import Table

    from .practice_cmd import _fmt_time

    table = Table(header_style="bold")
    for col in ("id", "started", "status", "answered", "report"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r.interview_id, _fmt_time(r.created_at), r.status, f"{r.answered}/{r.questions}",
                      r.report_path or "")
    out.print(table)
    out.print("[dim]`mlgrade history interviews ID` shows one again.[/]")


def register(app: typer.Typer) -> None:
    from .practice_cmd import history_app

    app.command("interview")(interview)
    history_app.command("interviews")(interviews)

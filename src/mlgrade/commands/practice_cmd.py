"""`mlgrade practice`, `mlgrade history [show N]` and `mlgrade stats`: thin fronts over
mlgrade.practice.session, mlgrade.practice.tui and mlgrade.practice.history."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from ._common import (
    BaseUrlOpt,
    GraderOpt,
    JsonOpt,
    ModelOpt,
    RefreshOpt,
    RubricsOpt,
    SectionOpt,
    bank_from,
    console,
    limit_opt,
    option,
    print_json,
    refresh_flag,
    require_grader_ready,
    settings_from,
)

QuestionIdsOpt = Annotated[Optional[list[str]], option(
    "--question", "-q", metavar="ID", help="Practise this question first (repeatable): q5, q05 or 5.")]


def practice(
    question: QuestionIdsOpt = None,
    section: SectionOpt = None,
    count: Annotated[Optional[int], limit_opt("End the session after N questions.", "--count")] = None,
    due: Annotated[bool, option("--due", help="Only questions due for review (spaced repetition).")] = False,
    random_pick: Annotated[bool, option("--random", help="Pick questions at random instead of the most worth practising.")] = False,
    editor: Annotated[bool, option("--editor", "-e", help="Write answers in $EDITOR instead of the terminal.")] = False,
    grader: GraderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    refresh: RefreshOpt = False,
    rubrics: RubricsOpt = None,
) -> None:
    """An interactive practice session: a question, your answer, graded feedback, then the next.

    Without options it asks what is most worth practising: questions due for review (weakest
    first), then ones you have never answered. Answers are stored in your history.

    Keys while answering: Enter = new line, Ctrl-D = submit, Ctrl-C = abandon the answer (back to
    the menu; Ctrl-C there quits).
    After the feedback: n next, r retry, m model answer, f answer the follow-up, q quit.

    Examples:

      mlgrade practice

      mlgrade practice --question q05

      mlgrade practice --section nlp --limit 3

      mlgrade practice --due
    """
    from ..errors import UsageError

    if not sys.stdin.isatty():
        raise UsageError("practice needs a terminal; to grade answers from a script use "
                         "`mlgrade grade QID --file F` or `mlgrade batch`")
    from ..rubrics import check_section

    check_section(section)
    from ..grading import make_grader
    from ..practice.history import all_attempts
    from ..practice.session import PracticeSession, SessionOptions, next_due
    from ..practice.tui import render_summary, run_practice
    from ..store import Store

    settings = settings_from(grader=grader, model=model, base_url=base_url, rubrics_dir=rubrics,
                             cache_capabilities=refresh_flag(refresh))
    require_grader_ready(settings)
    bank = bank_from(rubrics, settings)
    out = console()
    options = SessionOptions(questions=list(question or []), section=section, count=count, due_only=due,
                             random=random_pick)
    with Store.for_settings(settings) as store:
        session = PracticeSession(store, bank, grader=make_grader(settings), settings=settings, options=options)
        if due and not question and not session.candidates():
            upcoming = next_due(bank, all_attempts(store), section=section)
            when = f"; the next is {upcoming.question_id} on {upcoming.due_at.astimezone():%a %d %b %H:%M}" if upcoming else ""
            out.print(f"Nothing is due for review{when}. Try `mlgrade practice` for new questions.")
            return
        if settings.offline_notice:
            out.print(f"[dim]{settings.offline_notice}[/]")
        from ..measured import side_figure

        note, _ = side_figure(settings, bank=bank)
        if note:
            out.print(f"[dim]{note}[/]", soft_wrap=True)
        summary = run_practice(session, out, use_editor=editor)
        upcoming = next_due(bank, all_attempts(store))
        hint = None
        if upcoming and summary.questions:
            hint = f"Next review due: {upcoming.question_id} on {upcoming.due_at.astimezone():%a %d %b %H:%M}."
        out.print()
        render_summary(summary, out, next_due=hint)


# --------------------------------------------------------------------------- history

history_app = typer.Typer(invoke_without_command=True)  # its help is the callback's docstring, examples included


def _fmt_time(iso: str | None) -> str:
    from datetime import datetime

    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")


def _score_cell(a) -> str:  # type: ignore[no-untyped-def]
    if a.outcome == "graded":
        return f"{a.score:g} {a.band}"
    if a.outcome == "grader_error":
        return "[red]error[/]"
    return f"[dim]{a.outcome}[/]"


@history_app.callback()
def history(
    ctx: typer.Context,
    question: Annotated[Optional[str], option("--question", "-q", metavar="ID", help="Only attempts at this question.")] = None,
    limit: Annotated[int, limit_opt("How many recent attempts.", show_default=True)] = 20,
    json_out: JsonOpt = False,
    retry_errors: Annotated[bool, option("--retry-errors", help="Grade again every answer whose grading failed; results are stored as new attempts.")] = False,
    grader: GraderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    rubrics: RubricsOpt = None,
) -> None:
    """Your recent attempts, newest first; `history show N` shows one in full.

    Examples:

      mlgrade history

      mlgrade history --question q05 --json

      mlgrade history show 12

      mlgrade history --retry-errors

      mlgrade history interviews
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..practice import history as hist
    from ..store import Store

    settings = settings_from(rubrics_dir=rubrics, grader=grader, model=model, base_url=base_url)
    with Store.for_settings(settings) as store:
        if retry_errors:
            _retry(store, settings, rubrics, json_out)
            return
        qid = bank_from(rubrics, settings).get(question).id if question else None
        attempts = hist.recent(store, limit=limit, question_id=qid)
    if json_out:
        print_json([a.to_dict(full=True) for a in attempts])
        return
    out = console()
    if not attempts:
        out.print("No attempts yet. Start with `mlgrade practice`.")
        return
    from rich.markup import escape
    from rich.table import Table

    from ..textfiles import safe_text

    table = Table(header_style="bold", expand=True)
    for col in ("#", "when", "question", "score", "grader", "answer"):
        # one line per attempt: the answer is cut to the width left, `history show N` has it all
        table.add_column(col, no_wrap=True, overflow="ellipsis", justify="right" if col == "#" else "left",
                         ratio=1 if col == "answer" else None)
    for a in attempts:
        first_line = escape(safe_text(" ".join(a.answer.split())[:80]))
        # a follow-up answer is marked and points at the attempt it follows
        question_cell = a.question_id if a.kind == "main" else f"{a.question_id} ↳#{a.parent_id}"
        table.add_row(str(a.id), _fmt_time(a.created_at), question_cell, _score_cell(a),
                      "/".join(x for x in (a.grader, a.model) if x), first_line)
    out.print(table)
    out.print("[dim]`mlgrade history show N` for the full feedback of attempt N; "
              "`mlgrade history interviews` for your mock interviews.[/]")


def _retry(store, settings, rubrics, json_out: bool) -> None:  # type: ignore[no-untyped-def]
    from ..practice import history as hist

    bank = bank_from(rubrics, settings)
    pending = hist.pending_errors(store)
    if not pending:
        if json_out:
            print_json([])
        else:
            console().print("No grading errors to retry.")
        return
    out = console(stderr=json_out)
    with out.status(f"Retrying {len(pending)} failed grading(s)…"):
        results = hist.retry_errors(store, bank, settings=settings)
    if json_out:
        print_json([{"retried": old.id, "attempt": new_id, "outcome": g.outcome, "score": g.score, "error": g.error}
                    for old, g, new_id in results])
    else:
        for old, g, new_id in results:
            verdict = f"{g.score:g} {g.band}" if g.ok else f"[red]failed again: {g.error}[/]"
            out.print(f"#{old.id} {old.question_id} → #{new_id}: {verdict}")
    if any(not g.ok for _, g, _ in results):
        raise typer.Exit(1)


@history_app.command("show")
def show(
    attempt_id: Annotated[int, typer.Argument(help="Attempt number (the # column of `mlgrade history`).", metavar="N",
                                              show_default=False)],
    json_out: JsonOpt = False,
    rubrics: RubricsOpt = None,
) -> None:
    """Show one attempt: the question, your answer and its full feedback.

    Examples:

      mlgrade history show 3

      mlgrade history show 3 --json
    """
    from ..practice import history as hist
    from ..errors import UsageError
    from ..store import Store

    settings = settings_from(rubrics_dir=rubrics)
    with Store.for_settings(settings) as store:
        attempt = hist.get(store, attempt_id)
    if attempt is None:
        raise UsageError(f"no attempt #{attempt_id} (see `mlgrade history`)")
    if json_out:
        print_json(attempt.to_dict(full=True))
        return
    from rich.markup import escape
    from rich.panel import Panel

    from ..errors import MlgradeError
    from ..render import render_grade, render_question
    from ..textfiles import safe_text

    out = console()
    try:
        rubric = bank_from(rubrics, settings).get(attempt.question_id)
    except MlgradeError:
        rubric = None  # the rubric was removed or is invalid right now: still show the attempt
    if rubric:
        render_question(rubric, out)
    what = "your answer" if attempt.kind == "main" else f"your follow-up answer (to attempt #{attempt.parent_id})"
    out.print(Panel(escape(safe_text(attempt.answer)), title=f"{what} · attempt #{attempt.id} · {_fmt_time(attempt.created_at)}"))
    # a follow-up's key points are the follow-up's own, not the question's: shown by id
    render_grade(attempt.to_grade(), rubric if attempt.kind == "main" else None, out)


# --------------------------------------------------------------------------- stats


def stats(json_out: JsonOpt = False, rubrics: RubricsOpt = None) -> None:
    """Your progress: per section and per question (attempts, best, last, mean, trend, due),
    and the key points you miss most often.

    Examples:

      mlgrade stats

      mlgrade stats --json
    """
    from ..practice import history as hist
    from ..store import Store

    settings = settings_from(rubrics_dir=rubrics)
    bank = bank_from(rubrics, settings)
    with Store.for_settings(settings) as store:
        data = hist.stats(store, bank)
    if json_out:
        print_json(data)
        return
    _render_stats(data)


def _num(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "—"
    if signed:
        colour = "green" if x > 0 else "red" if x < 0 else "dim"
        return f"[{colour}]{x:+g}[/]"
    return f"{x:g}"


def _render_stats(data: dict) -> None:  # type: ignore[type-arg]
    from rich.markup import escape
    from rich.table import Table

    out = console()
    if not data["attempts"] and not data["errors"]:
        out.print("No graded attempts yet. Start with `mlgrade practice`.")
        return
    out.print(f"[bold]{data['attempts']}[/] graded attempts on [bold]{data['questions_practised']}[/] of "
              f"{data['questions_total']} questions" + (f", [red]{data['errors']} grading errors[/]" if data["errors"] else ""))
    sections = Table(title="by section", header_style="bold", title_justify="left")
    for col in ("section", "practised", "attempts", "best", "mean", "mean of latest"):
        sections.add_column(col, justify="left" if col == "section" else "right")
    for s in data["sections"]:
        sections.add_row(s["section"], f"{s['practised']}/{s['questions']}", str(s["attempts"]), _num(s["best"]),
                         _num(s["mean"]), _num(s["mean_last"]))
    out.print(sections)
    questions = Table(title="by question", header_style="bold", title_justify="left")
    for col in ("question", "section", "attempts", "best", "last", "mean", "trend", "next review"):
        questions.add_column(col, justify="left" if col in ("question", "section", "next review") else "right")
    for q in data["questions"]:
        review = "[bold yellow]due now[/]" if q["due"] else (_fmt_time(q["due_at"]) if q["due_at"] else "—")
        attempts = str(q["attempts"]) + (f" [red](+{q['errors']} err)[/]" if q["errors"] else "")
        questions.add_row(q["question_id"], q["section"], attempts, _num(q["best"]), _num(q["last"]), _num(q["mean"]),
                          _num(q["trend"], signed=True), review)
    out.print(questions)
    if data["most_missed"]:
        missed = Table(title="key points missed most often", header_style="bold", title_justify="left")
        for col in ("question", "key point", "missed", "point"):
            missed.add_column(col, justify="right" if col == "missed" else "left", overflow="fold")
        for m in data["most_missed"]:
            missed.add_row(m["question_id"], f"[bold]{m['key_point']}[/]", f"{m['missed']:g}/{m['judged']}",
                           escape(m["point"]))
        out.print(missed)


def register(app: typer.Typer) -> None:
    app.command("practice")(practice)
    app.add_typer(history_app, name="history")
    app.command("stats")(stats)

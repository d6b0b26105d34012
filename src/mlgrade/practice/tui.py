"""The interactive practice loop: question → answer → spinner → feedback → n/r/m/f/q → summary.

All decisions (what to ask, grading, storing) are in practice.py; this module only talks to
the person. The input functions are parameters so the loop can be driven by a script in tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import UsageError
from . import terminal_input
from .session import practice_follow_up
from .terminal_input import Abandoned

if TYPE_CHECKING:
    from rich.console import Console

    from ..models import FollowUp, Grade, Rubric
    from .session import PracticeSession, SessionSummary


@dataclass
class Inputs:
    """Where the person's input comes from (the terminal by default, a script in tests)."""

    answer: Callable[..., str] = terminal_input.read_answer
    key: Callable[..., str] = terminal_input.read_key
    editor: Callable[..., str] = terminal_input.edit_in_editor


MENU = {
    "n": "[bold]n[/] next",
    "r": "[bold]r[/] retry",
    "m": "[bold]m[/] model answer",
    "f": "[bold]f[/] answer the follow-up",
    "q": "[bold]q[/] quit",
}


def _get_answer(console: Console, inputs: Inputs, *, use_editor: bool, default: str = "") -> str:
    """Ask until there is a non-empty answer; Abandoned propagates (Ctrl-C)."""
    while True:
        if use_editor:
            console.print("[dim]Opening your editor; save and close it to submit (an empty file abandons).[/]")
            text = inputs.editor(default)
        else:
            # the full key hint is the prompt's bottom toolbar; this line stays short
            console.print("[dim]Your answer ([bold]Ctrl-D[/] submits, keys below):[/]")
            text = inputs.answer(default=default)
        if text.strip():
            return text
        console.print("[yellow]Empty answer: nothing to grade. Type something, or Ctrl-C to leave it.[/]")


def _grade(session: PracticeSession, console: Console, rubric: Rubric, answer: str,
           started_at: str) -> tuple[Grade, int | None] | None:
    """Grade with a spinner. None when the person pressed Ctrl-C (nothing stored)."""
    from ..errors import UsageError

    grader = session.grader
    console.print()
    label = f"Grading with the {grader.name} grader" + (f" · {grader.model}" if grader.model else "") + "…"
    try:
        with console.status(label, spinner="dots"):
            return session.grade(rubric, answer, started_at=started_at)
    except UsageError as exc:  # e.g. an answer over the size limit: say so, keep the session
        console.print(f"[red]error:[/] {exc}")
        return None


def render_model_answer(rubric: Rubric, console: Console) -> None:
    from rich.markup import escape
    from rich.panel import Panel

    console.print(Panel(escape(rubric.model_answer.strip()), title=f"[bold]{rubric.id}[/] model answer",
                        border_style="green"))
    for e in rubric.errata:
        console.print(f"  [dim]The source article says:[/] {escape(e.article_says)}\n  [green]→[/] {escape(e.correction)}")


def render_summary(summary: SessionSummary, console: Console, *, next_due: str | None = None) -> None:
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    from ..scoring import band_for

    if not summary.questions:
        console.print("[dim]No answers graded this session; nothing was stored.[/]")
        return
    table = Table(header_style="bold", expand=False, box=None, padding=(0, 2))
    table.add_column("question")
    table.add_column("attempts", justify="right")
    table.add_column("scores")
    table.add_column("band")
    for q in summary.questions:
        scores = " → ".join(f"{s:g}" for s in q.scores) or "—"
        if q.errors:
            scores += f"  [red]({q.errors} grader error{'s' if q.errors > 1 else ''})[/]"
        band = band_for(q.last) if q.last is not None else ""
        table.add_row(q.question_id, str(len(q.scores) + q.errors), scores, band)
    console.print(Panel(table, title="[bold]Session summary[/]", expand=True))
    n = len(summary.questions)
    mean = f"mean score {summary.mean_score:g}/100" if summary.mean_score is not None else "no graded answers"
    console.print(f"{n} question{'s' if n != 1 else ''}, {summary.attempts} graded attempt"
                  f"{'s' if summary.attempts != 1 else ''}, {mean} (latest score per question).")
    if summary.errors:
        console.print(f"[red]{summary.errors} grading error(s) stored; retry them with "
                      "`mlgrade history --retry-errors`.[/]")
    if summary.weakest:
        console.print("[bold yellow]Weakest key points[/]")
        for m in summary.weakest:
            mark = "[red]✗[/]" if m.missed >= m.judged else "[yellow]½[/]"
            essential = " [red](essential)[/]" if m.essential else ""
            console.print(f"  {mark} {m.question_id} [bold]{m.key_point}[/]{essential}: {escape(m.point)}")
    if next_due:
        console.print(f"[dim]{next_due}[/]")
    console.print("[dim]See your progress with `mlgrade stats`, past answers with `mlgrade history`.[/]")


def run_practice(session: PracticeSession, console: Console, *, use_editor: bool = False,
                 inputs: Inputs | None = None) -> SessionSummary:
    """Run the session until the person quits or no question is left; return the summary."""
    from rich.markup import escape

    from ..render import render_grade, render_question
    from ..store import now_iso

    inputs = inputs or Inputs()
    pick = session.next_question()
    if pick is None:
        console.print("[yellow]Nothing to practise with these options.[/]")
        return session.summary()
    number = 1
    while pick is not None:
        rubric = pick.rubric
        total = f" of {session.options.count}" if session.options.count else ""
        console.rule(f"[bold]Question {number}{total}[/] [dim]· {escape(pick.reason)}[/]")
        render_question(rubric, console)
        answer: str | None = None
        graded: tuple[Grade, int | None] | None = None
        attempt_id: int | None = None
        grade: Grade | None = None  # stays None when the answer is abandoned
        started = now_iso()
        try:
            while graded is None:
                answer = _get_answer(console, inputs, use_editor=use_editor, default=answer or "")
                graded = _grade(session, console, rubric, answer, started)
        except (Abandoned, KeyboardInterrupt):
            # the answer is abandoned, not the session: back to the menu, where Ctrl-C again quits
            console.print("[yellow]Answer abandoned; nothing stored.[/] [dim](Ctrl-C again quits)[/]")
        if graded is not None:
            grade, attempt_id = graded
            render_grade(grade, rubric, console)
            if grade.outcome == "grader_error":
                console.print("[dim]Stored as an error, not a score. Press r to try again, or retry later with "
                              "`mlgrade history --retry-errors`.[/]")

        answered: set[str] = set()  # follow-ups already answered: not offered twice
        choice = _menu(console, inputs, grade, answered, rubric)
        while choice in ("m", "f"):
            if choice == "m":
                render_model_answer(rubric, console)
            elif grade is not None:  # f is only offered after a grade
                follow = practice_follow_up(rubric, grade)
                if follow is not None and _answer_follow_up(session, console, inputs, rubric, answer or "", follow,
                                                            attempt_id, use_editor):
                    answered.add(follow.question)
            choice = _menu(console, inputs, grade, answered, rubric)
        if choice == "q":
            break
        if choice == "r":
            console.print()
            continue  # same pick: the question is shown again
        pick = session.next_question()
        number += 1
        if pick is None:
            console.print("[green]That was the last question of this session.[/]")
    return session.summary()


def score_line(grade: Grade | None, rubric: Rubric) -> str:
    """One line that keeps the result in sight next to the menu, however tall the feedback was
    (on 80×24 the score panel has scrolled away by then)."""
    from ..render import BAND_STYLE

    if grade is None:
        return f"[bold]{rubric.id}[/] · [yellow]answer abandoned[/] · nothing stored"
    if grade.outcome == "grader_error":
        return f"[bold]{rubric.id}[/] · [red]grading failed[/] · stored as an error, not a score"
    if grade.outcome != "graded" or grade.score is None:
        return f"[bold]{rubric.id}[/] · [yellow]not graded[/]"
    covered = sum(1 for j in grade.judgments if j.status == "covered")
    partial = sum(1 for j in grade.judgments if j.status == "partial")
    style = BAND_STYLE.get(grade.band or "", "bold")
    points = f"{covered}/{len(grade.judgments)} key points covered" + (f", {partial} partly" if partial else "")
    return f"[bold]{rubric.id}[/] · [{style}]{grade.score:g}/100 {grade.band}[/] · {points}"


def _menu(console: Console, inputs: Inputs, grade: Grade | None, answered: set[str], rubric: Rubric) -> str:
    follow = practice_follow_up(rubric, grade) if grade is not None else None
    offer_follow_up = follow is not None and follow.question not in answered
    keys = "nrm" + ("f" if offer_follow_up else "") + "q"
    console.print(score_line(grade, rubric))
    console.print("  ".join(MENU[k] for k in keys) + "   [dim](Enter = next)[/]")
    return inputs.key("› ", keys, default="n")


def _answer_follow_up(session: PracticeSession, console: Console, inputs: Inputs, rubric: Rubric, answer: str,
                      follow: FollowUp, parent_id: int | None, use_editor: bool) -> bool:
    """Ask the follow-up and grade the reply as an answer to it (its own key points, the first
    answer as context), stored linked to the first answer. False when abandoned (nothing stored)."""
    from rich.markup import escape
    from rich.panel import Panel

    from ..render import render_grade
    from ..store import now_iso

    console.print(Panel(escape(follow.question), title="[bold]follow-up[/]", border_style="cyan"))
    started = now_iso()
    try:
        reply = _get_answer(console, inputs, use_editor=use_editor)
    except (Abandoned, KeyboardInterrupt):
        console.print("[yellow]Follow-up abandoned; nothing stored.[/]")
        return False
    console.print()
    try:
        with console.status("Grading your answer to the follow-up…", spinner="dots"):
            grade, _ = session.grade_follow_up(rubric, follow, answer, reply, parent_id=parent_id, started_at=started)
    except KeyboardInterrupt:
        console.print("[yellow]Grading abandoned; nothing stored.[/]")
        return False
    except UsageError as exc:  # e.g. a reply over the size limit
        console.print(f"[red]error:[/] {exc}")
        return False
    render_grade(grade, None, console)  # the follow-up's key points are its own, shown by id
    return True

"""The mock interview in the terminal: question → answer (with the clock) → follow-up → answer,
then the next question; grades stay hidden until the end screen unless feedback is "now".

All decisions (draw, grading, storing, verdict) are in interview.py; this module only talks to
the person. The input functions and the clock are parameters so tests can script a whole run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import terminal_input
from .interview_report import clock as fmt_clock
from .interview_report import grade_cell, time_cell
from .terminal_input import Abandoned

if TYPE_CHECKING:
    from rich.console import Console

    from ..models import Grade
    from .interview import Interview
    from .interview_result import InterviewResult

# fits 80 columns together with the clock ("⏱ 12:34 of 6:00 · over by 6:34 ·")
HINT = " Enter new line · Ctrl-D submit · Ctrl-C skip or end "
CTRL_C_MENU = {"main": "[bold]s[/] skip this question  [bold]e[/] end the interview  [bold]c[/] carry on answering",
               "follow_up": "[bold]s[/] skip the follow-up  [bold]e[/] end the interview  [bold]c[/] carry on answering"}


@dataclass
class Inputs:
    """Where the person's input and the time come from (the terminal by default, a script in tests)."""

    answer: Callable[..., str] = terminal_input.read_answer
    key: Callable[..., str] = terminal_input.read_key
    now: Callable[[], float] = time.monotonic


def clock_text(elapsed: float, budget: float) -> str:
    """The clock as the toolbar shows it: elapsed against the question's soft budget."""
    text = f"⏱ {fmt_clock(elapsed)} of {fmt_clock(budget)}"
    if elapsed - budget >= 1:
        text += f" · over by {fmt_clock(elapsed - budget)}"
    return text


@dataclass
class Answered:
    action: str  # "answer", "skip" or "end"
    text: str
    seconds: float


def _read(console: Console, inputs: Inputs, part: str, base: float, budget: float) -> Answered:
    """One answer, timed. Ctrl-C asks: skip, end, or carry on (with the text typed so far)."""
    start = inputs.now()
    text = ""
    while True:
        try:
            text = inputs.answer(hint=HINT, default=text,
                                 clock=lambda: clock_text(base + inputs.now() - start, budget))
        except (Abandoned, KeyboardInterrupt) as exc:
            text = getattr(exc, "text", "") or text
            console.print(CTRL_C_MENU[part])
            choice = inputs.key("› ", "sec", default="c")
            if choice in ("s", "e", "q"):  # a second Ctrl-C (q) ends the interview
                return Answered("skip" if choice == "s" else "end", "", inputs.now() - start)
            continue
        if text.strip():
            return Answered("answer", text, inputs.now() - start)
        console.print("[yellow]Empty answer: type something, or Ctrl-C to skip the question or end.[/]")


def _graded(console: Console, label: str, work: Callable[[], Grade]) -> Grade | None:
    """Run the grading under a spinner; None when the answer was refused (e.g. over the size limit)."""
    from ..errors import UsageError

    try:
        with console.status(label, spinner="dots"):
            return work()
    except UsageError as exc:
        console.print(f"[red]error:[/] {exc}")
        return None


def run_interview(interview: Interview, console: Console, *, inputs: Inputs | None = None) -> InterviewResult:
    """Ask every question still open; returns the result (status "finished", or "ended" when the
    candidate ended it). The caller writes the report."""
    from rich.markup import escape
    from rich.panel import Panel

    from ..render import render_grade, render_question
    from ..store import now_iso

    inputs = inputs or Inputs()
    total = len(interview.questions)
    budget = interview.budget_seconds
    shown = -1  # the question whose panel is on screen
    ended = False
    while (step := interview.current()) is not None:
        index, part = step
        rubric = interview.rubric(index)
        if shown != index:
            console.rule(f"[bold]Question {index + 1} of {total}[/] [dim]· {rubric.section} · about "
                         f"{fmt_clock(budget)} with the follow-up[/]")
            render_question(rubric, console)
            shown = index
        follow = interview.follow_up(index) if part == "follow_up" else None
        if follow is not None:
            console.print(Panel(escape(follow.question), title="[bold]the interviewer follows up[/]",
                                border_style="cyan"))
        console.print("[dim]Your answer ([bold]Ctrl-D[/] submits, keys below):[/]")
        started = now_iso()
        got = _read(console, inputs, part, interview.questions[index]["seconds"], budget)
        if got.action == "end":
            interview.add_time(index, got.seconds)
            ended = True
            break
        if got.action == "skip":
            interview.skip(index, seconds=got.seconds)
            console.print("[yellow]Skipped.[/]" if part == "main" else "[yellow]Follow-up skipped.[/]")
            continue
        try:
            if part == "main":
                grade = _graded(console, "Noting your answer…", lambda: interview.answer_main(
                    index, got.text, seconds=got.seconds, started_at=started))
            else:
                grade = _graded(console, "Noting your answer…", lambda: interview.answer_follow_up(
                    index, got.text, seconds=got.seconds, started_at=started))
        except KeyboardInterrupt:  # Ctrl-C while grading: the interview ends with what was graded
            interview.add_time(index, got.seconds)
            ended = True
            break
        if grade is None:
            interview.add_time(index, got.seconds)
            continue  # refused before grading: the same answer is asked for again
        if interview.feedback == "now":
            render_grade(grade, rubric if part == "main" else None, console)
        elif grade.outcome == "grader_error":
            console.print("[red]This answer could not be graded[/] [dim](kept as an error, not a score)[/]")
        if part == "main" and interview.follow_up(index) is None and grade.outcome != "skipped":
            console.print("[dim]No follow-up for this question.[/]")
    return interview.finish(ended=ended)


def render_end_screen(result: InterviewResult, console: Console) -> None:
    """The verdict, each question's scores and time, what was missed, and what to study next."""
    from rich.markup import escape

    from ..render import BAND_STYLE, hanging
    from .interview_report import headline

    def cell(g: Grade | None, skipped: bool = False) -> str:
        text = grade_cell(g, skipped=skipped)
        style = BAND_STYLE.get((g.band or "") if g is not None and not skipped else "", "")
        return f"[{style}]{text}[/]" if style else text

    asked = result.asked
    console.rule(f"[bold]Interview {'over' if result.status == 'finished' else 'ended'}[/] · "
                 f"{len(asked)} of {len(result.questions)} questions · {fmt_clock(result.seconds)} of "
                 f"{fmt_clock(result.minutes * 60)}")
    for q in asked:
        follow = cell(q.follow_up, q.follow_up_skipped) if (q.follow_up_question or q.follow_up) else "none"
        if q.status == "skipped":
            follow = "—"
        console.print(f"[bold]{q.number}[/] {q.question_id} · main {cell(q.main, q.status == 'skipped')} · "
                      f"follow-up {follow} · {time_cell(q)}")
        # one row for both answers (the follow-up's points after ↳) keeps two questions on 24 lines
        missed = [", ".join(j.key_point for j in g.judgments if j.status != "covered") if g is not None and g.ok else ""
                  for g in (q.main, q.follow_up)]
        text = "; ".join(x for x in (missed[0], f"↳ {missed[1]}" if missed[1] else "") if x)
        rows = [("  [dim]missed:[/]", text)] if text else []
        rows += [("  [red]stated:[/]", m.claim or m.id) for g in (q.main, q.follow_up) if g is not None and g.ok
                 for m in g.misconceptions if m.verified]
        if rows:
            hanging(console, rows)
    decision = result.verdict.decision
    style = {"strong hire": "bold green", "hire": "bold cyan", "lean no hire": "bold yellow",
             "no hire": "bold red"}.get(decision or "", "bold")
    console.print(f"[{style}]{escape(headline(result))}[/]")
    console.print(f"[dim]{escape(result.verdict.rule)}[/]")
    if result.study:
        console.print("[bold]Study next[/]")
        hanging(console, [(f" {i}.", f"{s.question_id}: {s.text} ({s.why})") for i, s in enumerate(result.study, 1)])

"""The `mlgrade review` screen: one result at a time, flagged first; a key per decision.

All decisions (queue order, what a decision records, writing it) live in
mlgrade.batch.reviews.ReviewSession; this module only shows and asks. Input functions are
parameters so a script can drive the loop in tests, as in practice.tui.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..practice import terminal_input
from ..practice.terminal_input import Abandoned

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from ..batch.reviews import ReviewItem, ReviewSession

MENU = "[bold]a[/] accept  [bold]o[/] own score/band  [bold]s[/] skip  [bold]b[/] back  [bold]q[/] quit"
KEYS = "aosbq"
EVIDENCE_STYLE = {"covered": "black on green", "partial": "black on yellow"}
INJECTION_STYLE = "white on red"
MARK = {"covered": "[green]✓[/]", "partial": "[yellow]½[/]", "missing": "[red]✗[/]"}


@dataclass
class Inputs:
    key: Callable[..., str] = terminal_input.read_key
    line: Callable[..., str] = terminal_input.read_line


def highlighted_answer(item: ReviewItem) -> Text:
    """The answer with each judgment's evidence coloured by its status and any text aimed at
    the grader in red."""
    from rich.text import Text

    from ..evidence import quote_spans
    from ..injection_scan import find_injections

    answer = item.answer or ""
    shown, at = _shown(answer)
    text = Text(shown)
    for j in item.grade.judgments:
        style = EVIDENCE_STYLE.get(j.status)
        if style and j.evidence:
            for start, end in quote_spans(j.evidence, answer):
                text.stylize(style, at[start], at[end])
    for hit in find_injections(answer):
        text.stylize(INJECTION_STYLE, at[hit.start], at[hit.end])
    return text


def _shown(answer: str) -> tuple[str, list[int]]:
    """The answer as it may be shown (control codes as visible escapes, see `safe_text`) and, for
    each offset in the answer (and its end), the offset in the shown text, so evidence spans
    found in the raw answer still land on the right characters."""
    from ..textfiles import safe_text

    if safe_text(answer) == answer:
        return answer, list(range(len(answer) + 1))
    parts: list[str] = []
    at = [0]
    for ch in answer:
        parts.append(safe_text(ch))
        at.append(at[-1] + len(parts[-1]))
    return "".join(parts), at


def render_item(item: ReviewItem, session: ReviewSession, console: Console) -> None:
    from rich.markup import escape as _escape

    from ..textfiles import safe_text

    def escape(text: object) -> str:  # a results file's strings are candidate text: no control codes
        return _escape(safe_text(text))
    from rich.panel import Panel

    g = item.grade
    rec = item.record
    decided = sum(1 for e in session.queue if e.id in session.decisions)
    console.rule(f"[bold]Review {item.position + 1} of {item.total}[/] [dim]· {session.flagged} flagged · "
                 f"{decided} decided[/]")
    who = f" · candidate {escape(str(rec.get('candidate')))}" if rec.get("candidate") else ""
    question = item.rubric.question if item.rubric else "(question not in the rubric bank)"
    console.print(Panel(escape(question), title=f"[bold]{escape(g.question_id)}[/] · {escape(str(rec.get('id')))}{who}",
                        expand=True))
    if g.review.needed:
        for reason in g.review.reasons:
            console.print(f"[bold red]⚑ {reason}[/]: {escape(g.review.details.get(reason, ''))}")
    else:
        console.print("[dim]No review flag on this grade.[/]")
    line = f"mlgrade: [bold]{g.score:g}/100 {g.band}[/] [dim]({escape(g.grader)}{' · ' + escape(g.model) if g.model else ''})[/]"
    if item.decision is not None:
        d = item.decision
        mine = f"{d.score:g}/100 " if d.score is not None else ""
        line += f"   reviewer: [bold cyan]{mine}{d.band}[/] [dim]({d.decision}{': ' + escape(d.note) if d.note else ''})[/]"
    console.print(line)
    if item.rubric_changed:
        console.print("[yellow]The rubric has changed since this answer was graded.[/]")
    if item.answer is None:
        console.print("[yellow]The answer is not in the results file and its input could not be read; "
                      "judgments and evidence only.[/]")
    else:
        console.print(Panel(highlighted_answer(item), title="answer", subtitle="[black on green] covered [/] "
                            "[black on yellow] partial [/] [white on red] aimed at the grader [/]", expand=True))
    from rich.table import Table

    kp_text = {kp.id: kp.point for kp in item.rubric.key_points} if item.rubric else {}
    table = Table.grid(expand=True, padding=(0, 1))
    table.add_column(width=1)
    table.add_column(ratio=1)
    for j in g.judgments:
        cell = f"[bold]{escape(j.key_point)}[/] [dim]{escape(kp_text.get(j.key_point, ''))}[/]"
        if j.evidence:
            cell += f"\n[italic]“{escape(j.evidence)}”[/]"
            if not j.verified:
                cell += (" [red](inside text aimed at the grader)[/]" if "text aimed at the grader" in j.comment
                         else " [red](quote not found)[/]")
        table.add_row(MARK.get(j.status, "?"), cell)
    console.print(table)
    for m in g.misconceptions:
        console.print(f" [red]⚠ misconception[/]: {escape(m.claim or m.id)}")


def _own_grade(console: Console, inputs: Inputs) -> tuple[float | None, str | None, str] | None:
    """Ask for the reviewer's score or band, then an optional note. None when they back out."""
    from ..batch.reviews import parse_verdict
    from ..errors import UsageError

    while True:
        try:
            typed = inputs.line("your score (0-100) or band (strong/adequate/weak/poor): ",
                                hint=" Enter confirms · Ctrl-C cancels ")
        except Abandoned:
            return None
        try:
            score, band = parse_verdict(typed)
            break
        except UsageError as exc:
            console.print(f"[yellow]{exc}[/]")
    try:
        note = inputs.line("note (optional, Enter to skip): ", hint=" Enter confirms · Ctrl-C cancels ")
    except Abandoned:
        return None
    return score, band, note


def run_review(session: ReviewSession, console: Console, *, inputs: Inputs | None = None) -> None:
    """Show items until the queue ends or the person quits; every decision is written as it is made."""
    inputs = inputs or Inputs()
    notice = ""  # shown under the next screen: printed before the clear, it would be wiped at once
    while not session.done:
        item = session.current()
        console.clear()
        render_item(item, session, console)
        if notice:
            console.print(notice)
            notice = ""
        console.print(MENU)
        key = inputs.key("› ", KEYS)
        if key == "q":
            break
        if key == "a":
            session.accept()
        elif key == "o":
            own = _own_grade(console, inputs)
            if own is not None:
                score, band, note = own
                session.override(score=score, band=band, note=note)
        elif key == "s":
            session.skip()
        elif key == "b" and not session.back():
            notice = "[yellow]This is the first item: there is nothing before it.[/]"
    render_summary(session, console)


def render_summary(session: ReviewSession, console: Console) -> None:
    made = session.made
    overridden = sum(d.decision == "override" for d in made)
    if session.done:
        console.print("[green]End of the review queue.[/]")
    if not session.decisions:  # nothing was written: no file to point at
        console.print("No decisions made: nothing saved.")
        return
    console.print(f"{len(made)} decision{'s' if len(made) != 1 else ''} this session ({len(made) - overridden} accepted, "
                  f"{overridden} overridden), {len(session.decisions)} in all, saved in {session.reviews}")
    if made:
        console.print(f"[dim]See them in `mlgrade report {session.results}`; measure mlgrade against them with "
                      f"`mlgrade eval {session.results} --reviews {session.reviews}`.[/]")

"""Terminal rendering of questions and grades (rich). Pure presentation: no grading logic."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import redact
from .textfiles import safe_text

if TYPE_CHECKING:
    from rich.console import Console

    from .models import CodeTestResult, Grade, Rubric

BAND_STYLE = {"strong": "bold green", "adequate": "bold cyan", "weak": "bold yellow", "poor": "bold red"}
STATUS_MARK = {"covered": "[green]✓[/]", "partial": "[yellow]½[/]", "missing": "[red]✗[/]"}


def render_question(rubric: Rubric, console: Console, *, with_answer: bool = False) -> None:
    from rich.panel import Panel
    from rich.table import Table

    subtitle = f"{rubric.section} · {rubric.kind} · {rubric.difficulty}"
    console.print(Panel(rubric.question, title=f"[bold]{rubric.id}[/]", subtitle=subtitle, expand=True))
    if not with_answer:
        return
    console.print(Panel(rubric.model_answer.strip(), title="model answer", border_style="green"))
    table = Table(title="key points", header_style="bold", expand=True)
    table.add_column("id", no_wrap=True)
    table.add_column("weight", justify="right")
    table.add_column("essential", justify="center")
    table.add_column("point")
    for kp in rubric.key_points:
        table.add_row(kp.id, f"{kp.weight:g}", "●" if kp.essential else "", kp.point)
    console.print(table)
    if rubric.errata:
        console.print("[bold]Where the source article is wrong[/]")
        for e in rubric.errata:
            console.print(f"  • [dim]{e.article_says}[/] → {e.correction}")


def _footer(grade: Grade) -> str:
    u = grade.usage
    parts = [f"grader {grade.grader}"]
    if grade.model:
        parts.append(f"model {grade.model}")
    if u.input_tokens or u.output_tokens:
        parts.append(f"tokens {u.input_tokens:,} in ({u.cached_tokens:,} cached) / {u.output_tokens:,} out")
    parts.append(f"{grade.latency_ms:,} ms")
    if grade.cost_usd is not None and grade.grader == "llm":
        parts.append(f"≈ ${grade.cost_usd:.5f}")
    if grade.attempts > 1:
        parts.append(f"{grade.attempts} attempts")
    return " · ".join(parts)


def _markup_safe(text: object) -> str:
    """Candidate-derived text for rich markup: control codes made visible, markup escaped."""
    from rich.markup import escape

    return escape(safe_text(text))


MAX_CASES_SHOWN = 4  # failing cases listed on a terminal; --json and the results file keep them all
MAX_DETAIL = 120


def _code_tests(console: Console, results: list[CodeTestResult]) -> None:
    """The code run: one line when every case passed; else the first failing cases, each on a
    short line (a wrong function can fail 30 cases with long values: the rest are counted)."""
    from rich.table import Table

    escape = _markup_safe
    hidden = sum(t.hidden for t in results)
    passed = sum(t.status == "passed" for t in results)
    whole = len(results) == 1 and results[0].call == "(answer)"
    counts = "" if whole else (f"{passed} of {len(results)} cases passed ({len(results) - hidden} from the rubric, "
                               f"{hidden} hidden random cases)")
    failing = [t for t in results if t.status != "passed"]
    if not failing:
        console.print(f"[green]code run: {counts}[/]")
        return
    tests = Table(title=f"code run: {counts}" if counts else "code run", header_style="bold", expand=True)
    tests.add_column("call")
    tests.add_column("result", no_wrap=True)
    tests.add_column("detail")
    colour = {"failed": "red", "error": "red", "timeout": "yellow", "not-run": "yellow"}
    for t in failing[:MAX_CASES_SHOWN]:
        detail = t.error or (f"expected {t.expected}, got {t.got}" if t.status == "failed" else "")
        if len(detail) > MAX_DETAIL:
            detail = detail[:MAX_DETAIL] + "…"
        call = escape(t.call if len(t.call) <= 80 else t.call[:80] + "…") + (" [dim](hidden case)[/]" if t.hidden else "")
        tests.add_row(call, f"[{colour.get(t.status, 'red')}]{t.status}[/]", escape(detail))
    if len(failing) > MAX_CASES_SHOWN:
        tests.add_row(f"[dim]… {len(failing) - MAX_CASES_SHOWN} more not passed (all in --json)[/]", "", "")
    console.print(tests)


def _hanging(console: Console, rows: list[tuple[str, str]]) -> None:
    """`label text` lines whose wrapped continuation lines stay indented under the text (a
    two-column grid), so a long point stays readable on an 80-column terminal. `text` is escaped."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(ratio=1)
    for label, text in rows:
        grid.add_row(label, _markup_safe(text))
    console.print(grid)


hanging = _hanging  # the public name, for views outside this module (the interview's end screen)


def render_grade(grade: Grade, rubric: Rubric | None, console: Console) -> None:
    """The full feedback view shared by `grade`, `practice` and reports. Every string that can
    carry candidate text (quotes, claims, comments, errors, code values) is shown through
    `safe_text`, so control codes in an answer cannot drive the terminal."""
    escape = _markup_safe
    from rich.panel import Panel
    from rich.table import Table

    from .scoring import KEYWORD_LIST, OFF_TOPIC, OFF_TOPIC_CAP

    if grade.outcome == "skipped":
        console.print(Panel(f"Not graded: {escape(redact(grade.error) or 'skipped')}", title=grade.question_id, border_style="yellow"))
        return
    if grade.outcome == "grader_error":
        body = f"[bold red]Grading failed[/] after {grade.attempts} attempt(s): {escape(redact(grade.error) or '')}"
        if grade.raw_reply:
            body += f"\n\n[dim]raw reply (first 500 chars):[/]\n{escape(grade.raw_reply[:500])}"
        console.print(Panel(body, title=grade.question_id, border_style="red"))
        console.print(f"[dim]{_footer(grade)}[/]")
        return

    style = BAND_STYLE.get(grade.band or "", "bold")
    headline = f"[{style}]{grade.score:g}/100 · {grade.band}[/]"
    if grade.samples and grade.samples.get("n", 1) > 1:
        s = grade.samples
        headline += f"   [dim]median of {s['n']} samples, spread {s.get('min', 0):g}–{s.get('max', 0):g}[/]"
    console.print(Panel(headline, title=f"[bold]{grade.question_id}[/] score", expand=True, border_style=style.split()[-1]))
    for reason in grade.review.reasons:  # why a person should check this grade
        console.print(f"[bold yellow]⚑ {reason}[/]: {escape(grade.review.details.get(reason, ''))}")

    kp_text = {kp.id: kp.point for kp in rubric.key_points} if rubric else {}
    table = Table(header_style="bold", expand=True, show_lines=True)
    table.add_column("", width=2, justify="center")
    table.add_column("key point", ratio=2)
    table.add_column("evidence / comment", ratio=3)
    for j in grade.judgments:
        evidence = f"[italic]“{escape(j.evidence)}”[/]" if j.evidence else ""
        if j.evidence and not j.verified:
            evidence += " [red](unverified: not found in the answer)[/]"
        comment = escape(j.comment)
        cell = "\n".join(x for x in (evidence, f"[dim]{comment}[/]" if comment else "") if x)
        point = escape(kp_text.get(j.key_point, j.key_point))
        table.add_row(STATUS_MARK.get(j.status, j.status), f"[bold]{j.key_point}[/]\n{point}", cell)
    console.print(table)

    if grade.code_tests:
        _code_tests(console, grade.code_tests)

    for m in grade.misconceptions:
        tag = f"−{m.penalty:g}" if m.verified else "unverified, no penalty"
        label = "misconception"
        if m.id in (OFF_TOPIC, KEYWORD_LIST):  # a judgment of the whole answer: it has no quote to verify
            label, tag = "off-topic" if m.id == OFF_TOPIC else "keyword list", f"held at {OFF_TOPIC_CAP:g}"
        console.print(f"[bold red]✗ {label}[/] ({tag}): {escape(m.claim or m.id)}"
                      + (f"\n   [italic]“{escape(m.evidence)}”[/]" if m.evidence else ""))
    if grade.strengths:
        console.print("[bold green]Strengths[/]")
        _hanging(console, [("  +", item) for item in grade.strengths])
    if grade.improvements:
        console.print("[bold yellow]To improve[/]")
        _hanging(console, [("  →", item) for item in grade.improvements])
    if grade.follow_up:
        _hanging(console, [("[bold]Follow-up:[/]", grade.follow_up)])
    console.print(f"[dim]{_footer(grade)}[/]")

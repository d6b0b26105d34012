"""The interview report file: Markdown or HTML (by the file's extension), written through
`textfiles.write_output`, so it never replaces a file mlgrade did not write. By default it goes
to MLGRADE_HOME/interviews/interview-<id>.md.

Candidate text (answers, quoted evidence) is escaped for the format: it cannot inject markup.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..models import Grade
    from .interview_result import InterviewResult, QuestionResult

FORMATS = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html"}


def report_format(path: Path | str) -> str:
    """"md" or "html" from the extension; UsageError for anything else."""
    from ..errors import UsageError

    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise UsageError(f"--report {path}: name a .md or .html file (the extension picks the format)")
    return fmt


def default_report_path(home: Path, interview_id: str) -> Path:
    """MLGRADE_HOME/interviews/interview-<id>.md, the folder made if needed."""
    from ..store import ensure_folder

    folder = home / "interviews"
    ensure_folder(folder, f"the interviews folder {folder}")
    return folder / f"interview-{interview_id}.md"


def check_report_path(path: Path | str) -> Path:
    """Before the interview starts: the report can be written there (format known, folder exists,
    not someone else's file). Raises UsageError, so nobody answers for 30 minutes first."""
    from ..textfiles import check_output

    report_format(path)
    return check_output(path, option="--report")


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def time_cell(q: QuestionResult) -> str:
    if not q.asked:
        return "—"
    over = f" (over by {clock(q.over_seconds)})" if q.over_seconds >= 1 else ""
    return f"{clock(q.seconds)} of {clock(q.budget_seconds)}{over}"


def grade_cell(g: Grade | None, *, skipped: bool = False) -> str:
    if skipped:
        return "skipped"
    if g is None:
        return "—"
    if g.ok and g.score is not None:
        return f"{g.score:g} {g.band}"
    if g.outcome == "grader_error":
        return "grading failed"
    return "not graded"


def missed_points(q: QuestionResult, rubric_points: dict[str, str], follow_points: dict[str, str]) -> list[str]:
    out = []
    for grade, points, tag in ((q.main, rubric_points, ""), (q.follow_up, follow_points, " (follow-up)")):
        if grade is None or not grade.ok:
            continue
        for j in grade.judgments:
            if j.status != "covered":
                half = " (partly)" if j.status == "partial" else ""
                out.append(f"{points.get(j.key_point, j.key_point)}{half}{tag}")
    return out


def misconceptions_stated(q: QuestionResult) -> list[str]:
    return [m.claim or m.id for g in (q.main, q.follow_up) if g is not None and g.ok for m in g.misconceptions
            if m.verified]


def _points(result: InterviewResult, bank_rubrics: dict) -> dict[int, tuple[dict[str, str], dict[str, str]]]:  # type: ignore[type-arg]
    out = {}
    for q in result.questions:
        rubric = bank_rubrics.get(q.question_id)
        main = {kp.id: kp.point for kp in rubric.key_points} if rubric else {}
        follow = next((f for f in (rubric.follow_ups if rubric else []) if f.question == q.follow_up_question), None)
        out[q.number] = (main, {kp.id: kp.point for kp in getattr(follow, "key_points", [])})
    return out


def headline(result: InterviewResult) -> str:
    v = result.verdict
    if v.decision is None:
        return "No verdict: no answer could be graded."
    done = len(result.asked)
    ended = f", ended after {done} of {len(result.questions)} questions" if result.status != "finished" else ""
    return f"Verdict: {v.decision.upper()} (mean {v.mean:g} over {v.counted} question{'s' if v.counted != 1 else ''}{ended})"


def to_markdown(result: InterviewResult, bank_rubrics: dict) -> str:  # type: ignore[type-arg]
    from ..textfiles import MARK_MD, md_text

    points = _points(result, bank_rubrics)
    lines = [MARK_MD, f"# Mock interview {result.interview_id}", "",
             f"{result.created_at[:16].replace('T', ' ')} UTC · grader {result.grader}"
             + (f" · model {result.model}" if result.model and result.grader == "llm" else "")
             + f" · {clock(result.seconds)} of {clock(result.minutes * 60)}", "",
             f"**{headline(result)}**", "", f"*Rule:* {result.verdict.rule}", "",
             "| # | question | main | follow-up | time |", "|---|---|---|---|---|"]
    for q in result.questions:
        lines.append(f"| {q.number} | {q.question_id} ({q.section}) | {grade_cell(q.main, skipped=q.status == 'skipped')} "
                     f"| {grade_cell(q.follow_up, skipped=q.follow_up_skipped)} | {time_cell(q)} |")
    if result.study:
        lines += ["", "## Study next", ""]
        lines += [f"{i}. **{s.question_id}**: {md_text(s.text)} *({s.why})*" for i, s in enumerate(result.study, 1)]
    for q in result.questions:
        if not q.asked:
            continue
        main_pts, follow_pts = points[q.number]
        lines += ["", f"## {q.number}. {q.question_id}: {md_text(q.question)}", ""]
        if q.status == "skipped":
            lines += ["Skipped.", ""]
            continue
        lines += [f"**Your answer** ({grade_cell(q.main)}):", "", *_quote(md_text(q.main_answer)), ""]
        if q.follow_up_question:
            lines += [f"**Follow-up:** {md_text(q.follow_up_question)}", ""]
            if q.follow_up_skipped:
                lines += ["Follow-up skipped.", ""]
            elif q.follow_up is not None:
                # "not graded: this rubric has no key points…" says it all
                cell = md_text(q.follow_up.error) if q.follow_up.outcome == "skipped" and q.follow_up.error \
                    else grade_cell(q.follow_up)
                lines += [f"**Your answer** ({cell}):", "",
                          *_quote(md_text(q.follow_up_answer)), ""]
        missed = missed_points(q, main_pts, follow_pts)
        if missed:
            lines += ["Key points missed:", "", *[f"- {md_text(m)}" for m in missed], ""]
        wrong = misconceptions_stated(q)
        if wrong:
            lines += ["Misconceptions stated:", "", *[f"- {md_text(m)}" for m in wrong], ""]
        lines.append(f"Time: {time_cell(q)}")
    return "\n".join(lines).rstrip() + "\n"


def _quote(text: str) -> list[str]:
    return [f"> {line}" if line.strip() else ">" for line in (text.strip() or "(empty)").splitlines()]


def to_html(result: InterviewResult, bank_rubrics: dict) -> str:  # type: ignore[type-arg]
    from ..textfiles import MARK_HTML, safe_text

    def e(text: object) -> str:
        return html.escape(safe_text(text))

    points = _points(result, bank_rubrics)
    out = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">", MARK_HTML,
           f"<title>Mock interview {e(result.interview_id)}</title>",
           "<style>body{font-family:sans-serif;max-width:60em;margin:auto}td,th{padding:.2em .6em;text-align:left}"
           "blockquote{white-space:pre-wrap;border-left:3px solid #ccc;margin-left:0;padding-left:1em}</style>",
           "</head><body>", f"<h1>Mock interview {e(result.interview_id)}</h1>",
           f"<p>{e(result.created_at[:16].replace('T', ' '))} UTC · grader {e(result.grader)} · "
           f"{clock(result.seconds)} of {clock(result.minutes * 60)}</p>",
           f"<p><strong>{e(headline(result))}</strong></p>", f"<p><em>Rule:</em> {e(result.verdict.rule)}</p>",
           "<table><tr><th>#</th><th>question</th><th>main</th><th>follow-up</th><th>time</th></tr>"]
    for q in result.questions:
        out.append(f"<tr><td>{q.number}</td><td>{e(q.question_id)} ({e(q.section)})</td>"
                   f"<td>{e(grade_cell(q.main, skipped=q.status == 'skipped'))}</td>"
                   f"<td>{e(grade_cell(q.follow_up, skipped=q.follow_up_skipped))}</td><td>{e(time_cell(q))}</td></tr>")
    out.append("</table>")
    if result.study:
        out.append("<h2>Study next</h2><ol>")
        out += [f"<li><b>{e(s.question_id)}</b>: {e(s.text)} <em>({e(s.why)})</em></li>" for s in result.study]
        out.append("</ol>")
    for q in result.questions:
        if not q.asked:
            continue
        main_pts, follow_pts = points[q.number]
        out.append(f"<h2>{q.number}. {e(q.question_id)}: {e(q.question)}</h2>")
        if q.status == "skipped":
            out.append("<p>Skipped.</p>")
            continue
        out.append(f"<p><b>Your answer</b> ({e(grade_cell(q.main))}):</p><blockquote>{e(q.main_answer)}</blockquote>")
        if q.follow_up_question:
            out.append(f"<p><b>Follow-up:</b> {e(q.follow_up_question)}</p>")
            if q.follow_up_skipped:
                out.append("<p>Follow-up skipped.</p>")
            elif q.follow_up is not None:
                out.append(f"<p><b>Your answer</b> ({e(grade_cell(q.follow_up))}):</p>"
                           f"<blockquote>{e(q.follow_up_answer)}</blockquote>")
        missed = missed_points(q, main_pts, follow_pts)
        if missed:
            out.append("<p>Key points missed:</p><ul>" + "".join(f"<li>{e(m)}</li>" for m in missed) + "</ul>")
        wrong = misconceptions_stated(q)
        if wrong:
            out.append("<p>Misconceptions stated:</p><ul>" + "".join(f"<li>{e(m)}</li>" for m in wrong) + "</ul>")
        out.append(f"<p>Time: {e(time_cell(q))}</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_report(result: InterviewResult, bank_rubrics: dict, path: Path | str) -> Path:  # type: ignore[type-arg]
    """Write the report (format by extension); returns the path written."""
    from ..textfiles import write_output

    path = Path(path)
    text = to_html(result, bank_rubrics) if report_format(path) == "html" else to_markdown(result, bank_rubrics)
    return write_output(path, text, option="--report")

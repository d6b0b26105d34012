"""Reports over a batch results file: per question and per candidate, as Markdown, HTML or CSV
(the per-candidate gradebook is batch/gradebook.py).

The counting is batch/aggregate.py, which streams the JSONL once and keeps only counters. The
per-answer sections read lines back by byte offset, sorted by candidate and
question, so even a large file is never held whole.
"""

from __future__ import annotations

import csv
import html
import io
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import UsageError, redact
from ..textfiles import MARK_HTML, MARK_MD, counted, md_text
from .aggregate import BANDS, Aggregate, Group, aggregate_file
from .decisions import reviewed
from .lines import check_results_file, iter_records, needs_review
from .report_review import NO_CANDIDATE, View, html_needs_review, md_cell as _md_cell, md_needs_review, reasons_of as _reasons

FORMATS = ("md", "html", "csv", "gradebook")  # gradebook: batch/gradebook.py


def _ordered_offsets(path: Path, view: View) -> list[int]:
    keyed = [((rec.get("candidate") or NO_CANDIDATE), rec.get("question_id") or "", str(rec.get("id")), off)
             for off, rec in iter_records(path) if view.keep(rec)]
    keyed.sort()
    return [k[-1] for k in keyed]


def _records_in_order(path: Path, view: View) -> Iterator[dict[str, Any]]:
    with path.open("rb") as fh:
        for off in _ordered_offsets(path, view):
            fh.seek(off)
            yield reviewed(json.loads(fh.readline()), view.decisions)


def _kp_texts() -> dict[str, dict[str, str]]:
    """Key-point wording per question, when the rubrics load; ids alone otherwise."""
    try:
        from ..rubrics import load_rubrics

        return {r.id: {kp.id: kp.point for kp in r.key_points} for r in load_rubrics()}
    except Exception:  # a report must render even when a rubric is briefly invalid
        return {}


OVERRIDE_MARK = "✎"


def _fmt_mean(g: Group) -> str:
    return "–" if g.mean is None else f"{g.mean:g}" + (f" {OVERRIDE_MARK}" if g.overrides else "")


def _override_legend(agg: Aggregate) -> str:
    n = sum(g.overrides for g in agg.questions.values())
    return (f"{OVERRIDE_MARK} {n} reviewer override{'s' if n != 1 else ''} counted: the reviewer's score replaces "
            "mlgrade's, as in the gradebook." if n else "")


def _was(rec: dict[str, Any]) -> str:
    return f" {OVERRIDE_MARK} reviewer's score (mlgrade {rec['mlgrade_score']:g})" if "mlgrade_score" in rec else ""


def _bands_text(g: Group) -> str:
    return " · ".join(f"{b} {g.bands[b]}" for b in BANDS if g.bands.get(b))


# --------------------------------------------------------------------------- Markdown


def _agreement(agg: Aggregate) -> list[dict[str, Any]]:
    from ..measured import figures_for_graders  # how far each grader of these results agrees with experts

    return figures_for_graders(sorted(agg.graders)) if agg.graders else []


def render_markdown(path: Path, agg: Aggregate, title: str, view: View | None = None) -> Iterator[str]:
    view = view or View()
    kp = _kp_texts()
    yield f"# {title}\n\n"
    yield (f"{counted(agg.total, 'answer')}: {agg.outcomes.get('graded', 0):,} graded, {agg.outcomes.get('grader_error', 0):,} "
           f"errors, {agg.outcomes.get('skipped', 0):,} skipped. Tokens {agg.input_tokens:,} in "
           f"({agg.cached_tokens:,} cached) / {agg.output_tokens:,} out; cost ≈ ${agg.cost_usd:.4f}.\n\n")
    for fig in _agreement(agg):
        yield f"{_md_cell(fig['line'])}.\n\n"
    yield from md_needs_review(path, agg, view)
    if view.only_needs_review:
        yield from _md_answers(path, view, kp)
        return
    yield "## By question\n\n| question | answers | mean | bands | errors | skipped | most missed |\n|---|---:|---:|---|---:|---:|---|\n"
    for q, g in sorted(agg.questions.items()):
        missed = "; ".join(f"{_md_cell(kp.get(q, {}).get(k, k))} ({c:g})" for k, c in g.most_missed())
        yield f"| {_md_cell(q)} | {g.count} | {_fmt_mean(g)} | {_md_cell(_bands_text(g))} | {g.errors} | {g.skipped} | {missed} |\n"
    yield "\n## By candidate\n\n| candidate | answers | mean | bands | errors | skipped |\n|---|---:|---:|---|---:|---:|\n"
    for c, g in sorted(agg.candidates.items()):
        yield f"| {_md_cell(c)} | {g.count} | {_fmt_mean(g)} | {_md_cell(_bands_text(g))} | {g.errors} | {g.skipped} |\n"
    yield "\n" + (f"{_override_legend(agg)}\n\n" if _override_legend(agg) else "")
    yield from _md_answers(path, view, kp)


def _md_answers(path: Path, view: View, kp: dict[str, dict[str, str]]) -> Iterator[str]:
    yield "## Answers\n"
    current = None
    for rec in _records_in_order(path, view):
        cand = rec.get("candidate") or NO_CANDIDATE
        if cand != current:
            current = cand
            yield f"\n### {_md_cell(cand)}\n"
        q = rec.get("question_id") or "?"
        head = f"\n#### {_md_cell(q)} · `{_md_cell(rec.get('id')).replace('`', chr(39))}`"
        if rec.get("outcome") == "graded":
            mine = view.reviewer(rec)
            yield f"{head} — {rec.get('score'):g}/100 ({rec.get('band')}){_was(rec)}" + (f" · reviewer: {_md_cell(mine)}" if mine else "") + "\n\n"
            if needs_review(rec):
                yield f"- ⚑ needs review: {md_text(', '.join(_reasons(rec)))}\n"
            for j in rec.get("judgments") or []:
                mark = {"covered": "✓", "partial": "½", "missing": "✗"}.get(j.get("status"), "?")
                text = kp.get(q, {}).get(j.get("key_point"), j.get("key_point"))
                yield f"- {mark} {md_text(text)}" + (f" — “{_md_cell(j['evidence'])}”" if j.get("evidence") else "") + "\n"
            for m in rec.get("misconceptions") or []:
                yield f"- ⚠ misconception: {_md_cell(m.get('claim') or m.get('id'))}\n"
            for s in rec.get("improvements") or []:
                yield f"- → {_md_cell(s)}\n"
        else:
            yield (f"{head} — {_md_cell(rec.get('outcome'))}: {_md_cell(redact(rec.get('error')) or '')} "
                   f"(from {_md_cell(rec.get('source'))})\n")


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2rem auto;padding:0 1rem;color:#1f2328;background:#fff}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.3rem;margin-top:2.2rem}
.meta{color:#59636e}table{border-collapse:collapse;width:100%;margin:.8rem 0}
th,td{border-bottom:1px solid #e5e8eb;padding:.4rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:flex;height:.8rem;width:180px;border-radius:3px;overflow:hidden;background:#eee}
.strong{background:#1a7f37}.adequate{background:#0969da}.weak{background:#bf8700}.poor{background:#cf222e}
.pill{display:inline-block;padding:0 .5rem;border-radius:1rem;color:#fff;font-size:.85em}
details{border:1px solid #d0d7de;border-radius:6px;margin:.4rem 0;padding:.4rem .8rem}
summary{cursor:pointer;font-weight:600}ul{margin:.3rem 0}li.covered::marker{content:"✓  ";color:#1a7f37}
li.partial::marker{content:"½  ";color:#bf8700}li.missing::marker{content:"✗  ";color:#cf222e}
.ev{color:#59636e;font-style:italic}.err{color:#cf222e}h3{margin-top:1.6rem}
@media (prefers-color-scheme: dark){body{background:#0d1117;color:#e6edf3}th{background:#161b22}
th,td{border-color:#30363d}details{border-color:#30363d}.meta,.ev{color:#9198a1}}
"""


def _bar(g: Group) -> str:
    if not g.graded:
        return ""
    parts = "".join(f'<span class="{b}" style="width:{100 * g.bands[b] / g.graded:.1f}%" title="{b}: {g.bands[b]}"></span>'
                     for b in BANDS if g.bands.get(b))
    return f'<div class="bar">{parts}</div>'


def render_html(path: Path, agg: Aggregate, title: str, view: View | None = None) -> Iterator[str]:
    view = view or View()
    e = html.escape
    kp = _kp_texts()
    yield f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">{MARK_HTML}<title>{e(title)}</title><style>{_CSS}</style></head><body>'
    yield (f"<h1>{e(title)}</h1><p class='meta'>{counted(agg.total, 'answer')} · {agg.outcomes.get('graded', 0):,} graded · "
           f"{agg.outcomes.get('grader_error', 0):,} errors · {agg.outcomes.get('skipped', 0):,} skipped · tokens "
           f"{agg.input_tokens:,} in ({agg.cached_tokens:,} cached) / {agg.output_tokens:,} out · cost ≈ ${agg.cost_usd:.4f}</p>")
    for fig in _agreement(agg):
        yield f"<p class='meta'>{e(fig['line'])}.</p>"
    yield from html_needs_review(path, agg, view)
    if not view.only_needs_review:
        yield from _html_tables(agg, kp)
    yield from _html_answers(path, view, kp)
    yield "</body></html>\n"


def _html_tables(agg: Aggregate, kp: dict[str, dict[str, str]]) -> Iterator[str]:
    e = html.escape
    yield "<h2>By question</h2><table><tr><th>question</th><th>answers</th><th>mean</th><th>bands</th><th>errors</th><th>skipped</th><th>most missed key points</th></tr>"
    for q, g in sorted(agg.questions.items()):
        missed = "<br>".join(f"{e(kp.get(q, {}).get(k, k))} <span class='meta'>({c:g})</span>" for k, c in g.most_missed())
        yield (f"<tr><td>{e(q)}</td><td class='n'>{g.count}</td><td class='n'>{_fmt_mean(g)}</td><td>{_bar(g)}</td>"
               f"<td class='n'>{g.errors}</td><td class='n'>{g.skipped}</td><td>{missed}</td></tr>")
    yield "</table><h2>By candidate</h2><table><tr><th>candidate</th><th>answers</th><th>mean</th><th>bands</th><th>errors</th><th>skipped</th></tr>"
    for c, g in sorted(agg.candidates.items()):
        yield (f"<tr><td>{e(c)}</td><td class='n'>{g.count}</td><td class='n'>{_fmt_mean(g)}</td><td>{_bar(g)}</td>"
               f"<td class='n'>{g.errors}</td><td class='n'>{g.skipped}</td></tr>")
    yield "</table>" + (f"<p class='meta'>{html.escape(_override_legend(agg))}</p>" if _override_legend(agg) else "")


def _html_answers(path: Path, view: View, kp: dict[str, dict[str, str]]) -> Iterator[str]:
    e = html.escape
    yield "<h2>Answers</h2>"
    current = None
    for rec in _records_in_order(path, view):
        cand = rec.get("candidate") or NO_CANDIDATE
        if cand != current:
            current = cand
            yield f"<h3>{e(cand)}</h3>"
        q = rec.get("question_id") or "?"
        if rec.get("outcome") == "graded":
            band = rec.get("band") or ""
            mine = view.reviewer(rec)
            flag = f" <span class='err'>⚑ {e(', '.join(_reasons(rec)))}</span>" if needs_review(rec) else ""
            yield (f"<details><summary>{e(q)} · <span class='pill {e(band)}'>{rec.get('score'):g} {e(band)}</span>{e(_was(rec))} "
                   + (f"reviewer: <b>{e(mine)}</b> " if mine else "")
                   + f"<span class='meta'>{e(str(rec.get('id')))}</span>{flag}</summary><ul>")
            for j in rec.get("judgments") or []:
                ev = f" <span class='ev'>“{e(j['evidence'])}”</span>" if j.get("evidence") else ""
                yield f"<li class='{e(j.get('status', ''))}'>{e(kp.get(q, {}).get(j.get('key_point'), j.get('key_point', '')))}{ev}</li>"
            yield "</ul>"
            for m in rec.get("misconceptions") or []:
                yield f"<p class='err'>⚠ misconception: {e(m.get('claim') or m.get('id') or '')}</p>"
            if rec.get("improvements"):
                yield "<p><b>To improve</b></p><ul>" + "".join(f"<li>{e(s)}</li>" for s in rec["improvements"]) + "</ul>"
            if rec.get("follow_up"):
                yield f"<p><b>Follow-up:</b> {e(rec['follow_up'])}</p>"
            yield "</details>"
        else:
            yield (f"<details><summary>{e(q)} · <span class='err'>{e(str(rec.get('outcome')))}</span> "
                   f"<span class='meta'>{e(str(rec.get('id')))}</span></summary><p>{e(rec.get('error') or '')}"
                   f" <span class='meta'>(from {e(str(rec.get('source')))})</span></p></details>")


# --------------------------------------------------------------------------- CSV

CSV_COLUMNS = ("id", "candidate", "question_id", "outcome", "score", "band", "covered", "partial", "missing",
               "missed_key_points", "misconceptions", "error", "source", "review_needed", "review_reasons",
               "reviewer_decision", "reviewer_score", "reviewer_band", "reviewer_note")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a leading
    apostrophe; numbers stay numbers. Only for CSV: JSONL keeps the raw text."""
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA_START):
        value = "'" + value
    # a bare CR is not quoted by the csv module (our line end is LF) and would split the row
    return value.replace("\r\n", "\n").replace("\r", "\n")


def render_csv(path: Path, agg: Aggregate, title: str, view: View | None = None) -> Iterator[str]:
    view = view or View()
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for _, rec in iter_records(path):
        if not view.keep(rec):
            continue
        d = view.decisions.get(str(rec.get("id")))
        js = rec.get("judgments") or []
        status = Counter(j.get("status") for j in js)
        w.writerow([csv_safe(v) for v in (
            rec.get("id"), rec.get("candidate") or "", rec.get("question_id"), rec.get("outcome"),
            "" if rec.get("score") is None else rec["score"], rec.get("band") or "",
            status["covered"], status["partial"], status["missing"],
            ";".join(j.get("key_point", "") for j in js if j.get("status") != "covered"),
            ";".join(m.get("id", "") for m in rec.get("misconceptions") or []),
            redact(rec.get("error")) or "", rec.get("source") or "",
            "true" if needs_review(rec) else "false", ";".join(_reasons(rec)),
            d.decision if d else "", "" if d is None or d.score is None else d.score, d.band if d else "",
            d.note if d else "")])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()


RENDERERS = {"md": render_markdown, "html": render_html, "csv": render_csv}


def _checked_aggregate(path: Path, reviews: str | Path | None, warn: Any,
                       decisions: dict[str, Any] | None = None) -> Aggregate:
    """The results file's aggregate, after the checks every report makes (a one-line UsageError
    for a missing or empty file); `warn` hears of corrupt lines and true duplicates."""
    check_results_file(path)  # missing, empty or an answers file: one line, no per-line warnings
    if reviews is not None and not Path(reviews).is_file():
        raise UsageError(f"{reviews}: no such reviews file")
    agg = aggregate_file(path, decisions=decisions)
    if warn is not None:
        for line in agg.problems.lines():
            warn(f"{line} (line left out)")
    if agg.total == 0:
        raise UsageError(f"{path}: no results in it (expected JSON lines written by `mlgrade batch`)")
    repeats = agg.duplicates - agg.regraded  # a regrade's older line is history, not a problem
    if repeats and warn is not None:
        warn(f"{repeats:,} duplicate result(s) ignored: the last result per id counts")
    return agg


def report_data(results: str | Path, *, warn: Any = None, needs_review_only: bool = False) -> dict[str, Any]:
    """What a report counts, as data (`mlgrade report --json`): outcomes, tokens and cost, the
    review flags, and per question and per candidate the mean, bands and most-missed key points."""
    from .decisions import load_decisions, reviews_path

    path = Path(results)
    decisions = load_decisions(reviews_path(path)) if path.is_file() else {}
    agg = _checked_aggregate(path, None, warn, decisions)
    if needs_review_only:
        agg = aggregate_file(path, only_needs_review=True, decisions=decisions)
    return {"results": str(path), **agg.to_dict(), "expert_agreement": _agreement(agg)}


def write_report(results: str | Path, fmt: str = "md", out: str | Path | None = None,
                 title: str | None = None, *, warn: Any = None, needs_review_only: bool = False,
                 reviews: str | Path | None = None) -> Path | str:
    """Render a report of a batch results file. Writes to `out` and returns its path, or
    returns the text when `out` is None. The last result per id counts; `warn(message)` is
    told how many older duplicates were left out (not the lines a regrade replaced). The grades flagged for review come first;
    with `needs_review_only` they are all it lists. The reviewer's decisions are read from
    `reviews`, or from RESULTS.reviews.jsonl beside the results when that exists."""
    from .decisions import load_decisions, reviews_path

    path = Path(results)
    if fmt not in RENDERERS:
        raise UsageError(f"unknown report format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if reviews is not None and not Path(reviews).is_file():
        raise UsageError(f"{reviews}: no such reviews file")
    decisions = load_decisions(reviews if reviews is not None else reviews_path(path), warn) if path.is_file() else {}
    agg = _checked_aggregate(path, reviews, warn, decisions)
    view = View(only_needs_review=needs_review_only, decisions=decisions)
    if needs_review_only:
        agg = aggregate_file(path, only_needs_review=True, decisions=decisions)
    default = f"mlgrade report: {path.name}" + (" (only the grades needing review)" if needs_review_only else "")
    chunks = RENDERERS[fmt](path, agg, title or default, view)
    if out is None:
        return "".join(chunks)
    from ..textfiles import first_line_is, write_output

    inputs = (path, reviews if reviews is not None else reviews_path(path))
    if fmt == "md":  # marked in a file (not on stdout) so a later run knows it may replace it
        chunks = itertools.chain([MARK_MD + "\n"], chunks)
    return write_output(out, chunks, inputs=inputs, ours=first_line_is(",".join(CSV_COLUMNS)))

"""What `mlgrade batch` shows: the progress bar, the end-of-run summary, the --dry-run estimate
and a wide file's column mapping. rich is imported inside the functions (start-up stays fast)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from ._common import console

SHOWN_IGNORED = 30  # ignored columns named in the dry-run mapping; the rest are counted

if TYPE_CHECKING:
    from ..batch.columns import WideMapping
    from ..batch.progress import BatchProgress, BatchSummary

class ProgressBar:
    """A rich progress bar on stderr: done / errors / in flight / rate / ETA / cached tokens."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]grading"), BarColumn(), MofNCompleteColumn(),
            TextColumn("[red]{task.fields[errors]} err[/] · {task.fields[skipped]} skip · {task.fields[flight]} in flight · "
                       "{task.fields[rate]} answers/s · {task.fields[cached]} cached tok"),
            TimeRemainingColumn(), console=console(stderr=True), transient=False, refresh_per_second=8)
        self.task = self.progress.add_task("grading", total=None, errors=0, skipped=0, flight="0", rate="0.0", cached=0)

    def __enter__(self) -> ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is KeyboardInterrupt:
            # The terminal's "^C" echo wraps a full-width bar onto a second row, so the final
            # redraw lands one row low and the bar shows twice; the "interrupted: …" line that
            # follows carries the count, so the bar is erased instead.
            self.progress.live.transient = True
        self.progress.stop()

    def __call__(self, p: BatchProgress) -> None:
        rate = p.rate
        flight = f"{p.in_flight}/{p.limit}" + (f" ({p.rate_limits}×429)" if p.rate_limits else "")
        self.progress.update(self.task, total=p.total or None, completed=p.done, errors=p.errors, skipped=p.skipped,
                             flight=flight, rate=f"{rate:.1f}", cached=f"{p.usage.cached_tokens:,}")


def print_summary(summary: BatchSummary) -> None:
    from rich.table import Table

    from ..textfiles import counted, safe_text

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
    out.print(f"all results: {counted(res.total, 'answer')} · tokens {res.input_tokens:,} in ({res.cached_tokens:,} cached) / "
              f"{res.output_tokens:,} out · cost ≈ ${res.cost_usd:.4f}")
    if res.needs_review:
        reasons = ", ".join(f"{r} {n}" for r, n in res.review_reasons.most_common())
        grades = "grade needs" if res.needs_review == 1 else "grades need"
        out.print(f"[yellow]{res.needs_review:,} {grades} review[/] ({reasons}): `mlgrade review {summary.out}` "
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


def print_mapping(m: WideMapping, stream: Any) -> None:
    """The column → question mapping of a wide file, one plain line each (greppable, never wrapped)."""
    from ..errors import quote_name
    from ..textfiles import safe_text

    def w(text: str) -> None:  # headers and warnings quote the file's own text: no control codes out
        stream.write(safe_text(text))

    w(f"{m.path}" + (f" (sheet {quote_name(m.sheet)})" if m.sheet else "")
      + f": wide file (one row per candidate): {m.rows:,} rows, {len(m.questions)} question columns, "
      f"{m.answers:,} answers" + (f", {m.empty:,} empty (skipped: no answer)" if m.empty else "")
      + (f", {m.bad_rows:,} unreadable rows" if m.bad_rows else "") + "\n")
    w(f"  candidate  ← {quote_name(m.candidate_label)}" + (f" ({m.candidate_how})" if m.candidate_how else "") + "\n")
    for c in m.questions:
        score = f" {c.score:g}" if c.score is not None else ""
        w(f"  column {c.index + 1:<3} {quote_name(c.header, 58):<62} → {c.question_id}  ({c.how}{score}; "
          f"answers: {c.answers:,})\n")
    others = [m.columns[i] for i in range(len(m.columns))
              if m.columns[i].role == "identity" and i not in m.candidate_columns]
    if others:
        w("  identity (not used): " + ", ".join(quote_name(c.header) for c in others) + "\n")
    if m.ignored:
        shown = m.ignored[:SHOWN_IGNORED]  # an export of 5,000 columns would print one line of 100 KB
        more = len(m.ignored) - len(shown)
        w("  ignored: " + ", ".join(f"{quote_name(c.header, 38)} ({c.how or 'no match'})" for c in shown)
          + (f" … and {more:,} more (--json lists them)" if more else "") + "\n")
    for warning in m.warnings:
        w(f"  warning: {warning}\n")


def print_estimate(summary: BatchSummary) -> None:
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

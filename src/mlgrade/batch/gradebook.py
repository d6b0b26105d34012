"""The gradebook: one row per candidate, a score and a band column per question, and a total.

Questions come in the order of the input's columns (a wide file's source is `file:line:column`),
candidates in the order of the input's rows. A skipped or errored answer is a blank cell
with the reason in the `note` column, never a 0: a missing score must not read as a bad one.
A reviewer's override (`mlgrade review`) replaces mlgrade's score and is noted; a grade flagged
for review that nobody has reviewed yet is noted too.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import quote_name, redact
from ..textfiles import XLSX_CREATOR
from .decisions import Decision, load_decisions, reviews_path
from .lines import Problems, iter_records, needs_review
from .report import csv_safe

_SOURCE = re.compile(r"^(?P<file>.*?):(?P<line>\d+)(?::(?P<col>\d+))?$")


@dataclass
class _Cell:
    outcome: str
    score: float | None
    band: str
    error: str
    id: str = ""
    count: int = 1  # answers to this question by this candidate (a repeat is noted, not added)
    review: str = ""  # "needs review", or what a reviewer changed


@dataclass
class Gradebook:
    questions: list[str]
    rows: list[tuple[str, dict[str, _Cell]]]  # (candidate, question -> cell), in input order
    header: list[str] = field(default_factory=list)

    def table(self) -> Iterator[list[Any]]:
        """The header, then one list of cells per candidate (numbers as numbers, blanks as None)."""
        yield ["candidate", *(f"{q} {part}" for q in self.questions for part in ("score", "band")),
               "total", "graded", "note"]
        for candidate, cells in self.rows:
            row: list[Any] = [candidate]
            notes = []
            scores = []
            for q in self.questions:
                cell = cells.get(q)
                if cell is not None and cell.count > 1:
                    notes.append(f"{q}: {cell.count} answers, the first graded one is shown")
                if cell is not None and cell.review:
                    notes.append(f"{q}: {cell.review}")
                if cell is not None and cell.outcome == "graded" and cell.score is not None:
                    row += [cell.score, cell.band]
                    scores.append(cell.score)
                    continue
                row += [None, None]
                if cell is None:
                    notes.append(f"{q}: no result")
                elif cell.outcome == "skipped":
                    notes.append(f"{q}: {cell.error or 'skipped'}")
                else:
                    notes.append(f"{q}: grader error ({cell.error or 'no reason given'})")
            row += [round(sum(scores), 1) if scores else None, len(scores), "; ".join(notes)]
            yield row


def _reviewed(cell: _Cell, rec: dict[str, Any], decision: Decision | None) -> _Cell:
    """The reviewer's score stands where there is one; a flagged grade nobody reviewed is noted."""
    if cell.outcome != "graded":
        return cell
    if decision is None:
        cell.review = "needs review" if needs_review(rec) else ""
    elif decision.decision == "override" and decision.score is not None:
        was = f"{cell.score:g}" if cell.score is not None else "none"
        cell.score, cell.band = decision.score, decision.band or cell.band
        cell.review = f"reviewer set {decision.score:g} (mlgrade {was})"
    return cell


NO_CANDIDATE_REFUSAL = ("a gradebook needs a candidate per answer: give long inputs a `candidate` field "
                        "(JSONL/CSV/YAML) or grade a wide export (one row per candidate), then run `mlgrade batch` again")


def build_gradebook(path: Path, decisions: dict[str, Decision] | None = None, *,
                    known: Collection[str] | None = None,
                    warn: Callable[[str], None] | None = None, problems: Problems | None = None) -> Gradebook:
    """Read a results file once; keep one small cell per (candidate, question). `decisions`:
    reviewer decisions by result id (mlgrade review), applied over mlgrade's grades. `known`:
    the bank's question ids; a result for any other id gets no column (and a warning).
    Raises UsageError when an answer has no candidate: rows would otherwise add up different
    people's scores."""
    from ..errors import UsageError

    unknown: dict[str, int] = {}
    nameless = total = 0
    files: dict[str, int] = {}
    q_order: dict[str, tuple[int, int, str]] = {}
    c_order: dict[str, tuple[int, int]] = {}
    cells: dict[str, dict[str, _Cell]] = {}
    # a corrupt line (wrong types) is left out; when nobody collects them, `warn` hears of each
    own = problems is None and warn is not None
    if own:
        problems = Problems(path)
    for n, (_, rec) in enumerate(iter_records(path, problems=problems)):
        q = rec.get("question_id") or ""
        if not q:
            continue  # a row that never named a question has no column to go in
        total += 1
        if not rec.get("candidate"):
            nameless += 1
            continue
        if known is not None and q not in known:
            unknown[q] = unknown.get(q, 0) + 1
            continue
        cand = rec["candidate"]
        m = _SOURCE.match(str(rec.get("source") or ""))
        rank = files.setdefault(m.group("file"), len(files)) if m else len(files)
        line = int(m.group("line")) if m else n
        col = int(m.group("col")) if m and m.group("col") else 10**9  # long inputs: after the columns, by id
        q_order[q] = min(q_order.get(q, (rank, col, q)), (rank, col, q))
        c_order[cand] = min(c_order.get(cand, (rank, line)), (rank, line))
        cell = _reviewed(_Cell(str(rec.get("outcome")), rec.get("score"), rec.get("band") or "",
                               str(redact(rec.get("error")) or ""), str(rec.get("id"))),
                         rec, (decisions or {}).get(str(rec.get("id"))))
        have = cells.setdefault(cand, {})
        if q not in have:
            have[q] = cell
        elif have[q].id == cell.id:  # the same answer written again: the last result counts, as in report
            cell.count = have[q].count
            have[q] = cell
        else:  # a second answer to the same question: the first graded one counts
            cell.count = have[q].count + 1
            if have[q].outcome != "graded" and cell.outcome == "graded":
                have[q] = cell
            else:
                have[q].count = cell.count
    if nameless:
        raise UsageError(f"{path}: {nameless:,} of {total:,} answers have no candidate; {NO_CANDIDATE_REFUSAL}")
    if own and problems is not None and warn is not None:
        for line in problems.lines():
            warn(f"{line} (line left out)")
    if unknown and warn is not None:
        warn("left out of the gradebook, not a question in the bank: "
             + ", ".join(f"{quote_name(q)} ({n:,} answer{'s' if n > 1 else ''})" for q, n in sorted(unknown.items())[:10])
             + (f", … and {len(unknown) - 10:,} more" if len(unknown) > 10 else ""))
    questions = sorted(q_order, key=lambda q: q_order[q])
    rows = [(c, cells[c]) for c in sorted(cells, key=lambda c: c_order[c])]
    return Gradebook(questions, rows)


def render_gradebook_csv(book: Gradebook) -> Iterator[str]:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for row in book.table():
        w.writerow(["" if v is None else csv_safe(v) for v in row])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()


def write_gradebook_xlsx(book: Gradebook, target: Path) -> Path:
    """The gradebook as a workbook: scores as numbers, text cells always stored as text."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("gradebook")
    for values in book.table():
        row = []
        for v in values:
            if isinstance(v, str):
                v = ILLEGAL_CHARACTERS_RE.sub("\ufffd", v)  # control characters are not allowed in XLSX text
            cell = WriteOnlyCell(ws, value=v)
            if isinstance(v, str):
                cell.data_type = "s"  # openpyxl would store "=…" as a formula otherwise
            row.append(cell)
        ws.append(row)
    wb.properties.creator = XLSX_CREATOR  # how a later run knows it may replace this file
    wb.save(target)
    return target


def _gradebook_header(head: bytes) -> bool:
    """A gradebook CSV's first line: candidate, `<question> score,<question> band` pairs, total,graded,note."""
    first = head.decode("utf-8-sig", "replace").split("\n", 1)[0].rstrip("\r").split(",")
    pairs = first[1:-3]
    return (first[:1] == ["candidate"] and first[-3:] == ["total", "graded", "note"] and len(pairs) % 2 == 0
            and all(a.endswith(" score") and b == a[:-6] + " band" for a, b in zip(pairs[::2], pairs[1::2])))


def write_gradebook(results: str | Path, out: str | Path | None = None, *,
                    reviews: str | Path | None = None, known: Collection[str] | None = None,
                    warn: Callable[[str], None] | None = None) -> Path | str:
    """Write the gradebook of a results file to `out` (XLSX when it ends in .xlsx, else CSV) and
    return its path, or return the CSV text when `out` is None. Reviewer decisions come from
    `reviews`, or RESULTS.reviews.jsonl beside the results when that exists. `known`: the
    question ids of the bank (others are left out with a warning). Nothing is written when the
    results cannot make a gradebook (an answer without a candidate)."""
    from ..errors import UsageError

    from .lines import check_results_file

    path = Path(results)
    check_results_file(path)
    if reviews is not None and not Path(reviews).is_file():
        raise UsageError(f"{reviews}: no such reviews file")
    if next(iter_records(path), None) is None:
        raise UsageError(f"{path}: no results in it (expected JSON lines written by `mlgrade batch`)")
    decisions = load_decisions(reviews if reviews is not None else reviews_path(path), warn)
    book = build_gradebook(path, decisions, known=known, warn=warn)  # refuses before anything is written
    if out is None:
        return "".join(render_gradebook_csv(book))
    from ..textfiles import write_output

    target = Path(out)
    inputs = (path, reviews if reviews is not None else reviews_path(path))
    if target.suffix.lower() == ".xlsx":
        return write_output(target, lambda tmp: write_gradebook_xlsx(book, tmp), inputs=inputs)
    return write_output(target, render_gradebook_csv(book), inputs=inputs, ours=_gradebook_header)

"""Wide exports (forms, quizzes, LMS): one row per candidate, one column per question.

The columns' roles come from batch/columns.py; this module streams the answers out of the
rows and inspects a file for `--dry-run`. The result id of an answer is
`<candidate>/<question id>`, so rerunning resumes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..rubrics import RubricBank
from .columns import LONG_COLUMNS, WideMapping, WideOptions, plan_columns
from .sheets import _SURROGATE, XLSX_SUFFIXES, open_sheet, read_header

__all__ = ["WideAnswer", "WideMapping", "WideOptions", "inspect_wide", "is_wide", "plan_columns", "wide_answers"]


# --------------------------------------------------------------------------- reading


@dataclass
class WideAnswer:
    id: str
    question_id: str
    answer: str
    candidate: str | None
    line: int
    column: int  # 1-based; 0 for a row that could not be read
    skip_reason: str | None = None


def is_wide(path: Path) -> bool:
    """An XLSX file, or a CSV whose header lacks both question_id and answer (a long file has them)."""
    suffix = path.suffix.lower()
    if suffix in XLSX_SUFFIXES:
        return True
    if suffix != ".csv" or not path.is_file():
        return False
    try:
        header = {h.strip().lower() for h in read_header(path)}
    except UsageError:
        return False  # let the long reader report it as before
    return not (header & LONG_COLUMNS)


def wide_answers(path: Path, bank: RubricBank, options: WideOptions | None = None,
                 mapping: WideMapping | None = None) -> Iterator[WideAnswer]:
    """One answer per (row, question column), in row order then column order. An empty cell is a
    skipped answer ("no answer"); an unreadable row is one skipped item."""
    with open_sheet(path) as sheet:
        m = mapping or plan_columns(sheet.header, bank, options, str(path))
        qcols = m.questions
        for row in sheet.rows:
            if row.error:
                yield WideAnswer(f"{path.name}:{row.line}", "", "", None, row.line, 0, row.error)
                continue
            candidate = m.candidate(row.cells, row.line)
            bad_name = _SURROGATE.search(candidate) is not None
            if bad_name:
                candidate = f"row-{row.line}"
            for c in qcols:
                text = row.cells[c.index]
                reason = ("candidate name is not valid UTF-8" if bad_name else "not valid UTF-8"
                          if _SURROGATE.search(text) else None if text.strip() else "no answer")
                yield WideAnswer(f"{candidate}/{c.question_id}", c.question_id or "", "" if reason else text,
                                 candidate, row.line, c.index + 1, reason)


def inspect_wide(path: str | Path, bank: RubricBank, options: WideOptions | None = None) -> WideMapping:
    """The mapping of a wide file plus what a streaming pass over it finds: answers per column,
    empty cells, repeated candidates, unmatched columns that look like answers. With
    `options.strict`, such a column is an error."""
    p = Path(path)
    opts = options or WideOptions()
    seen: set[int] = set()
    with open_sheet(p) as sheet:
        m = plan_columns(sheet.header, bank, opts, str(p))
        watch = [c for c in m.columns if c.role != "identity"]
        # other identity columns, to suggest one whose values are all present and distinct
        others = {c.index: set() for c in m.columns if c.role == "identity" and c.index not in m.candidate_columns}
        for row in sheet.rows:
            if row.error:
                m.bad_rows += 1
                continue
            m.rows += 1
            key = hash(m.candidate(row.cells, row.line))
            if key in seen:
                m.duplicate_candidates += 1
            seen.add(key)
            for i, values in list(others.items()):
                value = row.cells[i].strip()
                if not value or hash(value) in values:
                    del others[i]  # empty or repeated: no use as the candidate
                else:
                    values.add(hash(value))
            for c in watch:
                text = row.cells[c.index].strip()
                if not text:
                    c.empty += 1
                    continue
                c.answers += 1
                if c.role == "unmatched":
                    c.chars += len(text)
                    c.wordy += len(text.split()) >= 5
    for c in m.questions:
        m.answers += c.answers
        m.empty += c.empty
    if m.duplicate_candidates:
        m.warnings.append(f"{m.duplicate_candidates} row(s) repeat a candidate already seen in column "
                          f"{m.candidate_label!r}: their answers get the same ids and are skipped as duplicates; "
                          + (f"use --candidate-column {m.columns[min(others)].header!r} (unique in every row)"
                             if others else "name a unique column with --candidate-column"))
    suspicious = [c for c in m.columns if c.role == "unmatched" and c.looks_like_answers]
    for c in suspicious:
        m.warnings.append(f"column {c.header!r} matches no question but looks like free-text answers "
                          f"({c.answers} filled): map it with --map \"{c.header}=qNN\" or ignore it with "
                          f"--map \"{c.header}=-\"")
    if opts.strict and suspicious:
        raise UsageError(f"{p}: --strict: {len(suspicious)} unmatched column(s) look like answers, first "
                         f"{suspicious[0].header!r}: map them with --map \"COLUMN=qNN\" or ignore with --map \"COLUMN=-\"")
    return m

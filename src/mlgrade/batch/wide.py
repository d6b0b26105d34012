"""Wide exports (forms, quizzes, LMS): one row per candidate, one column per question.

The columns' roles come from batch/columns.py; this module streams the answers out of the
rows and inspects a file for `--dry-run`. The result id of an answer is
`<candidate>/<question id>`, so rerunning resumes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError, quote_name
from ..rubrics import RubricBank
from .columns import LONG_COLUMNS, WideMapping, WideOptions, map_example, plan_columns
from .sheets import _SURROGATE, XLSX_SUFFIXES, open_sheet, read_header

# values (one hash each, about 60 bytes) kept to find a column unique in every row: ~30 MB at most
MAX_TRACKED_VALUES = 500_000

__all__ = ["WideAnswer", "WideMapping", "WideOptions", "check_wide_options", "inspect_wide", "is_wide", "plan_columns",
           "wide_answers"]


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


def check_wide_options(paths: list[Path], options: WideOptions | None) -> None:
    """Column options given with no wide file among the inputs would be silently ignored: refuse."""
    if options is None or not (options.mapping or options.candidate_column):
        return
    if any(is_wide(p) for p in paths):
        return
    flag = "--map" if options.mapping else "--candidate-column"
    names = ", ".join(p.name for p in paths[:3]) + (" …" if len(paths) > 3 else "")
    raise UsageError(f"{flag} applies to wide files (form exports: one row per candidate, one column per question); "
                     f"{names} {'has' if len(paths) == 1 else 'have'} a question_id per answer: drop {flag}")


def _opener(path: Path, bank: RubricBank, opts: WideOptions):  # type: ignore[no-untyped-def]
    """open_sheet choosing, in a workbook, the first sheet whose header maps to questions."""

    def usable(header: list[str]) -> bool:
        try:
            plan_columns(header, bank, opts, str(path))
        except UsageError:
            return False
        return True

    return open_sheet(path, opts.sheet, usable)


def wide_answers(path: Path, bank: RubricBank, options: WideOptions | None = None,
                 mapping: WideMapping | None = None) -> Iterator[WideAnswer]:
    """One answer per (row, question column), in row order then column order. An empty cell is a
    skipped answer ("no answer"); an unreadable row is one skipped item. Without `mapping` the
    file is inspected first (one more pass) so that a candidate column that names nobody is
    replaced exactly as `inspect_wide` reports it."""
    m = mapping or inspect_wide(path, bank, options)
    with _opener(path, bank, options or WideOptions()) as sheet:
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
    with _opener(p, bank, opts) as sheet:
        m = plan_columns(sheet.header, bank, opts, str(p))
        m.sheet = sheet.name
        watch = [c for c in m.columns if c.role != "identity"]
        # other columns that could name the candidates (identity first, then e.g. Timestamp): kept
        # while their values are all present and distinct
        others: dict[int, set[int]] = {c.index: set() for c in sorted(m.columns, key=lambda c: c.role != "identity")
                                       if c.role != "question" and c.index not in m.candidate_columns}
        tracked = 0  # values held in `others`, bounded: a wide file of unique values is not held whole
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
                    tracked -= len(values)
                else:
                    values.add(hash(value))
            tracked += len(others)
            while tracked > MAX_TRACKED_VALUES and others:
                # only the first column still unique is used: drop the least preferred (the last)
                tracked -= len(others.pop(next(reversed(others))))
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
    unique = next(iter(others), None)  # dicts keep insertion order: identity columns first
    if m.duplicate_candidates and not opts.candidate_column and m.candidate_columns and len(seen) * 2 <= m.rows:
        # most rows share a name (an anonymous export: every Name is "Anonymous"): it names nobody,
        # so the candidates are named by a column unique in every row, or by row number
        was = m.candidate_label
        m.candidate_columns = [unique] if unique is not None else []
        m.candidate_how = f"{quote_name(was)} repeats"
        m.warnings.append(f"column {quote_name(was)} has {len(seen)} distinct value(s) in {m.rows} rows, so it cannot tell "
                          "candidates apart: candidates are named by "
                          + (f"column {quote_name(m.columns[unique].header)} (unique in every row)" if unique is not None
                             else "row number (row-2, row-3 …)")
                          + "; name another with --candidate-column")
        m.duplicate_candidates = 0
    elif m.duplicate_candidates:
        m.warnings.append(f"{m.duplicate_candidates} row(s) repeat a candidate already seen in column "
                          f"{quote_name(m.candidate_label)}: their answers get the same ids and are skipped as duplicates; "
                          + (f"use --candidate-column {quote_name(m.columns[unique].header)} (unique in every row)"
                             if unique is not None else "name a unique column with --candidate-column"))
    suspicious = [c for c in m.columns if c.role == "unmatched" and c.looks_like_answers]
    for c in suspicious:
        m.warnings.append(f"column {quote_name(c.header)} matches no question but looks like free-text answers "
                          f"({c.answers} filled): map it with {map_example(c.header, 'qNN')} or ignore it with "
                          f"{map_example(c.header, '-')}")
    if opts.strict and suspicious:
        raise UsageError(f"{p}: --strict: {len(suspicious)} unmatched column(s) look like answers, first "
                         f"{quote_name(suspicious[0].header)}: map them with --map \"COLUMN=qNN\" or ignore with --map \"COLUMN=-\"")
    return m

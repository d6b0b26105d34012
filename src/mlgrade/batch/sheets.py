"""Read a spreadsheet export (CSV or XLSX) as a header and a stream of rows of text cells.

Both readers stream: CSV row by row, XLSX through batch/xlsx.py (its sheet and shared strings
parsed with bounded memory and time; the shared strings spooled to a temporary file, 8 bytes per
string in memory: benchmarks/wide_memory.py). A row that cannot be read comes out with an error
instead of stopping the file, so the caller can report it as a skipped row.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError, quote_name, quote_names

XLSX_SUFFIXES = (".xlsx", ".xlsm")
# A row or answer file longer than this is skipped unread (the answer limit is far lower; this
# bounds what one hostile row can cost in memory while still reporting it)
MAX_ROW_CHARS = 4_000_000
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class Row:
    line: int  # CSV: physical line the row starts on; XLSX: the sheet's row number
    cells: list[str]
    error: str | None = None


@dataclass
class Sheet:
    header: list[str]
    rows: Iterator[Row]
    name: str = ""  # XLSX: the worksheet read, when the workbook has more than one


class _Lines:
    """Physical lines for csv.reader, counted, with the quote characters of the current record
    summed, so after a field over the size limit the reader can be moved past that record."""

    def __init__(self, fh: Any):
        self.fh = fh
        self.line_no = 0
        self.quotes = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self.fh)
        self.line_no += 1
        self.quotes += line.count('"')
        return line

    def skip_rest_of_record(self) -> None:
        """Inside a quoted field (odd number of quotes so far): read on to the line that closes it."""
        while self.quotes % 2 == 1:
            try:
                next(self)
            except StopIteration:
                return


MALFORMED_CSV = "malformed CSV from this line on"


def csv_records(reader: Any, lines: _Lines) -> Iterator[Row]:
    """The records of a csv.reader over `lines`, each numbered by the physical line it starts on.
    A record over the field limit comes out as an error row and reading goes on past it; broken
    quoting comes out as an error row (MALFORMED_CSV) and ends the file, since the reader cannot
    resynchronise. Shared by the long reader (batch/inputs.py) and the wide one (below)."""
    while True:
        line = lines.line_no + 1  # a quoted cell may span several lines: report the first
        lines.quotes = 0
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                lines.skip_rest_of_record()
                # the bound the caller set (MAX_ROW_CHARS in both readers)
                yield Row(line, [], f"row is over {csv.field_size_limit():,} characters (far over the answer limit)")
                continue
            yield Row(line, [], f"{MALFORMED_CSV}: {exc}")
            return
        yield Row(line, cells)


def _csv_rows(reader: Any, lines: _Lines, width: int) -> Iterator[Row]:
    for row in csv_records(reader, lines):
        if row.error is not None:
            yield row
            continue
        cells = row.cells
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            yield Row(row.line, [], f"row has {len(cells)} cells but the header has {width}")
            continue
        yield Row(row.line, (cells + [""] * width)[:width])


def _trim(header: list[str]) -> list[str]:
    while header and not header[-1].strip():
        header.pop()
    return header


DELIMITERS = (",", ";", "\t")


def sniff_delimiter(header_line: str) -> str:
    """The header line's separator among , ; and tab (outside quotes): Excel in many European
    locales writes `;`. A tie, or none of them, is the comma."""
    bare = re.sub(r'"[^"]*"', "", header_line)
    counts = {d: bare.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # max keeps the first of equals: the comma
    return best if counts[best] > counts[","] else ","


@contextmanager
def open_sheet(path: Path, sheet: str | None = None,
               pick: Callable[[list[str]], bool] | None = None) -> Iterator[Sheet]:
    """The header and rows of a CSV file or of one sheet of an XLSX workbook: the one named (or
    numbered from 1) by `sheet`, else the first whose header `pick` accepts, else the first."""
    if path.suffix.lower() in XLSX_SUFFIXES:
        with _open_xlsx(path, sheet, pick) as sheet:
            yield sheet
        return
    with open_csv(path) as (raw_header, reader, lines):
        header = _trim([c.strip() for c in raw_header])
        if not header:
            raise UsageError(f"{path}: empty file (expected a header row)")
        yield Sheet(header, _csv_rows(reader, lines, len(header)))


@contextmanager
def open_csv(path: Path) -> Iterator[tuple[list[str], Any, _Lines]]:
    """A CSV file's raw header row, a csv reader positioned after it, and the reader's line source
    (for line numbers): UTF-8 with or without a BOM, the delimiter sniffed (`;` from European Excel),
    strict (an unterminated quote is an error, not an answer that silently swallows the file's tail),
    fields bounded by MAX_ROW_CHARS. An unreadable header is a one-line UsageError."""
    with path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        delimiter = sniff_delimiter(fh.readline(MAX_ROW_CHARS))
        fh.seek(0)
        lines = _Lines(fh)
        reader = csv.reader(lines, strict=True, delimiter=delimiter)
        old_limit = csv.field_size_limit()
        csv.field_size_limit(MAX_ROW_CHARS)  # our own bound; restored below (the limit is process-wide)
        try:
            try:
                header = next(reader, [])
            except csv.Error as exc:
                raise UsageError(f"{path}: unreadable CSV header ({exc})") from None
            yield header, reader, lines
        finally:
            csv.field_size_limit(old_limit)


class _Workbook:
    """An open workbook: its sheets (title, part), its shared strings and its date styles."""

    def __init__(self, path: Path):
        from openpyxl.reader.excel import ExcelReader
        from openpyxl.styles.stylesheet import apply_stylesheet
        from openpyxl.xml.constants import SHARED_STRINGS

        from . import xlsx

        self.strings: Any = []
        self.sheets: list[tuple[str, str]] = []
        outer = self

        class Reader(ExcelReader):  # type: ignore[misc]
            def read_strings(self) -> None:
                ct = self.package.find(SHARED_STRINGS)
                if ct is not None:
                    outer.strings = xlsx.SharedStrings(self.archive, ct.PartName[1:], MAX_ROW_CHARS)

            def read_worksheets(self) -> None:  # only where each sheet is: its rows are read by xlsx.py
                for ws, rel in self.parser.find_sheets():
                    if rel.target in self.valid_files and "chartsheet" not in rel.Type:
                        outer.sheets.append((ws.name, rel.target))

        reader = Reader(path, read_only=True, keep_vba=False, data_only=True, keep_links=False, rich_text=False)
        self.archive = reader.archive
        try:
            xlsx.check_part_sizes(self.archive)
            reader.read_manifest()
            reader.read_strings()
            reader.read_workbook()
            apply_stylesheet(self.archive, reader.wb)
            reader.read_worksheets()
        except BaseException:
            self.close()
            raise
        wb = reader.wb
        self.styles = xlsx.CellStyles(set(getattr(wb, "_date_formats", ())), set(getattr(wb, "_timedelta_formats", ())),
                                      wb.epoch)

    def rows(self, part: str, width: int = 0) -> Iterator[Any]:
        from . import xlsx

        return xlsx.sheet_rows(self.archive, part, self.strings, self.styles, width or xlsx.MAX_COLUMNS, MAX_ROW_CHARS)

    def header(self, part: str) -> list[str]:
        """The first row with any text; an unreadable or over-long one is a one-line error."""
        for index, row in enumerate(self.rows(part)):
            if row.last:
                raise UsageError(f"unreadable Excel workbook: {row.error}")
            if row.error is not None:
                raise UsageError(f"unreadable header row {row.number} ({row.error})")
            if row.cells:
                cells = [""] * (max(row.cells) + 1)
                for i, v in row.cells.items():
                    cells[i] = v.strip()
                header = _trim(cells)
                if header:
                    self.header_index = index  # rows before it are empty: data rows start after it
                    return header
        return []

    def close(self) -> None:
        self.archive.close()
        if hasattr(self.strings, "close"):
            self.strings.close()


def _xlsx_rows(book: _Workbook, part: str, header_index: int, width: int) -> Iterator[Row]:
    import itertools

    for row in itertools.islice(book.rows(part, width), header_index + 1, None):
        if row.last:
            yield Row(row.number, [], f"unreadable worksheet from this row on: {row.error}")
            return
        if row.error is not None:
            yield Row(row.number, [], row.error)
            continue
        if not any(c.strip() for c in row.cells.values()):
            continue
        cells = [""] * width
        for i, v in row.cells.items():
            cells[i] = v
        yield Row(row.number, cells)


def _choose_sheet(path: Path, book: _Workbook, sheet: str | None,
                  pick: Callable[[list[str]], bool] | None) -> tuple[str, str]:
    sheets = book.sheets
    names = quote_names(title for title, _ in sheets)
    if sheet is not None:
        by_name = [s for s in sheets if s[0] == sheet] or [s for s in sheets
                                                           if s[0].strip().casefold() == sheet.strip().casefold()]
        if by_name:
            return by_name[0]
        if sheet.strip().isdigit() and 1 <= int(sheet) <= len(sheets):
            return sheets[int(sheet) - 1]
        raise UsageError(f"{path}: --sheet {quote_name(sheet)}: no such sheet (sheets: {names}; or a number 1-{len(sheets)})")
    if pick is None or len(sheets) == 1:
        return sheets[0]
    for s in sheets:  # exports put responses on the first sheet, but a summary sheet may come first
        header = book.header(s[1])
        if header and pick(header):
            return s
    raise UsageError(f"{path}: no sheet has a header with a question column (sheets: {names}): "
                     "choose one with --sheet NAME and map its columns with --map \"COLUMN=q07\"")


@contextmanager
def _open_xlsx(path: Path, sheet: str | None = None,
               pick: Callable[[list[str]], bool] | None = None) -> Iterator[Sheet]:
    import zipfile
    import zlib

    from openpyxl.utils.exceptions import InvalidFileException

    from .xlsx import Damaged, TooLarge

    try:
        book = _Workbook(path)
    except (Damaged, TooLarge) as exc:
        raise UsageError(f"{path}: unreadable Excel workbook: {exc}") from None
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, EOFError, SyntaxError, OSError,
            zlib.error, TypeError, AttributeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{path}: not an Excel workbook (.xlsx) ({type(exc).__name__}: {reason[:200]})") from None
    try:
        if not book.sheets:
            raise UsageError(f"{path}: the workbook has no sheet")
        try:
            title, part = _choose_sheet(path, book, sheet, pick)
            header = book.header(part)
        except UsageError as exc:
            msg = str(exc)
            raise UsageError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
        if not header:
            raise UsageError(f"{path}: sheet {quote_name(title)} is empty (expected a header row)")
        yield Sheet(header, _xlsx_rows(book, part, book.header_index, len(header)), title if len(book.sheets) > 1 else "")
    finally:
        book.close()


def read_header(path: Path) -> list[str]:
    with open_sheet(path) as sheet:
        return sheet.header

"""Read a spreadsheet export (CSV or XLSX) as a header and a stream of rows of text cells.

Both readers stream: CSV row by row, XLSX through openpyxl's read-only mode (rows are parsed
as they are iterated). openpyxl would still load the workbook's shared-strings table whole,
and Excel keeps every text cell there, so a 10,000-row export would sit in memory: the
table is spooled to a temporary file instead, keeping 8 bytes per string in memory
(benchmarks/wide_memory.py). A row that cannot be read comes out with an error instead of
stopping the file, so the caller can report it as a skipped row.
"""

from __future__ import annotations

import csv
import datetime as dt
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


def cell_text(value: Any) -> str:
    """A cell as the text a person sees: 3 not 3.0, dates in ISO form, empty for None."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return str(value)


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


def _xlsx_rows(ws: Any, width: int) -> Iterator[Row]:
    rows = enumerate(ws.iter_rows(min_row=2, values_only=True), start=2)
    number = 1
    while True:
        try:
            number, values = next(rows)
        except StopIteration:
            return
        except (SyntaxError, KeyError, ValueError, IndexError, EOFError) as exc:  # a damaged sheet
            yield Row(number + 1, [], f"unreadable worksheet from this row on: {type(exc).__name__}: {exc}")
            return
        cells = [cell_text(v) for v in values]
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            yield Row(number, [], f"row has {len(cells)} cells but the header has {width}")
            continue
        yield Row(number, (cells + [""] * width)[:width])


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


class SpooledStrings:
    """A workbook's shared-strings table on disk, indexed like the list openpyxl would build."""

    def __init__(self, source: Any):
        import tempfile
        from array import array

        from openpyxl.cell.text import Text
        from openpyxl.xml.constants import SHEET_MAIN_NS
        from openpyxl.xml.functions import iterparse

        self._fh = tempfile.TemporaryFile()
        self._ends = array("q")
        tag = "{%s}si" % SHEET_MAIN_NS
        root = None
        end = 0
        for event, node in iterparse(source, events=("start", "end")):
            if root is None:
                root = node
            if event == "end" and node.tag == tag:
                # the same cleaning as openpyxl's read_string_table
                data = Text.from_tree(node).content.replace("x005F_", "").encode("utf-8", "surrogatepass")
                self._fh.write(data)
                end += len(data)
                self._ends.append(end)
                root.clear()  # drop parsed items: the tree must not grow with the table

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i: int) -> str:
        start = self._ends[i - 1] if i > 0 else 0
        self._fh.seek(start)
        return self._fh.read(self._ends[i] - start).decode("utf-8", "surrogatepass")

    def close(self) -> None:
        self._fh.close()


def _load_workbook(path: Path) -> tuple[Any, SpooledStrings | None]:
    """openpyxl's load_workbook(read_only=True, data_only=True), with the shared strings spooled."""
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.xml.constants import SHARED_STRINGS

    spooled: list[SpooledStrings] = []

    class Reader(ExcelReader):  # type: ignore[misc]
        def read_strings(self) -> None:
            ct = self.package.find(SHARED_STRINGS)
            if ct is not None:
                with self.archive.open(ct.PartName[1:]) as src:
                    self.shared_strings = SpooledStrings(src)
                    spooled.append(self.shared_strings)

    reader = Reader(path, read_only=True, keep_vba=False, data_only=True, keep_links=False, rich_text=False)
    try:
        reader.read()
    except BaseException:
        for s in spooled:
            s.close()
        raise
    return reader.wb, (spooled[0] if spooled else None)


def _header_of(ws: Any) -> list[str]:
    first = next(ws.iter_rows(min_row=1, max_row=1, values_only=True), ())
    return _trim([cell_text(v).strip() for v in first])


def _choose_sheet(path: Path, wb: Any, sheet: str | None, pick: Callable[[list[str]], bool] | None) -> Any:
    sheets = wb.worksheets
    names = quote_names(ws.title for ws in sheets)
    if sheet is not None:
        by_name = [ws for ws in sheets if ws.title == sheet] or [ws for ws in sheets
                                                                 if ws.title.strip().casefold() == sheet.strip().casefold()]
        if by_name:
            return by_name[0]
        if sheet.strip().isdigit() and 1 <= int(sheet) <= len(sheets):
            return sheets[int(sheet) - 1]
        raise UsageError(f"{path}: --sheet {quote_name(sheet)}: no such sheet (sheets: {names}; or a number 1-{len(sheets)})")
    if pick is None or len(sheets) == 1:
        return sheets[0]
    for ws in sheets:  # exports put responses on the first sheet, but a summary sheet may come first
        header = _header_of(ws)
        if header and pick(header):
            return ws
    raise UsageError(f"{path}: no sheet has a header with a question column (sheets: {names}): "
                     "choose one with --sheet NAME and map its columns with --map \"COLUMN=q07\"")


@contextmanager
def _open_xlsx(path: Path, sheet: str | None = None,
               pick: Callable[[list[str]], bool] | None = None) -> Iterator[Sheet]:
    import zipfile

    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb, strings = _load_workbook(path)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, EOFError, SyntaxError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{path}: not an Excel workbook (.xlsx) ({reason})") from None
    try:
        if not wb.worksheets:
            raise UsageError(f"{path}: the workbook has no sheet")
        ws = _choose_sheet(path, wb, sheet, pick)
        header = _header_of(ws)
        if not header:
            raise UsageError(f"{path}: sheet {quote_name(ws.title)} is empty (expected a header row)")
        yield Sheet(header, _xlsx_rows(ws, len(header)), ws.title if len(wb.worksheets) > 1 else "")
    finally:
        wb.close()
        if strings is not None:
            strings.close()


def read_header(path: Path) -> list[str]:
    with open_sheet(path) as sheet:
        return sheet.header

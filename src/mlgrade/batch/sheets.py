"""Read a spreadsheet export (CSV or XLSX) as a header and a stream of rows of text cells.

Both readers stream: CSV row by row, XLSX through openpyxl's read-only mode (rows are parsed
as they are iterated; note that openpyxl still loads the workbook's shared-strings table whole,
see benchmarks/wide_memory.py). A row that cannot be read comes out with an error instead
of stopping the file, so the caller can report it as a skipped row.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError

XLSX_SUFFIXES = (".xlsx", ".xlsm")


@dataclass
class Row:
    line: int  # CSV: physical line the row starts on; XLSX: the sheet's row number
    cells: list[str]
    error: str | None = None


@dataclass
class Sheet:
    header: list[str]
    rows: Iterator[Row]


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


def _csv_rows(reader: Any, width: int, start: int) -> Iterator[Row]:
    rows = iter(reader)
    while True:
        try:
            cells = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            # the reader cannot resynchronise after a broken quote: report the row, stop this file
            yield Row(start + 1, [], f"malformed CSV from this line on: {exc}")
            return
        line, start = start + 1, reader.line_num  # a quoted cell may span several physical lines
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            yield Row(line, [], f"row has {len(cells)} cells but the header has {width}")
            continue
        yield Row(line, (cells + [""] * width)[:width])


def _xlsx_rows(ws: Any, width: int) -> Iterator[Row]:
    for number, values in enumerate(ws.iter_rows(min_row=2, values_only=True), start=2):
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


@contextmanager
def open_sheet(path: Path) -> Iterator[Sheet]:
    """The header and rows of a CSV file or of an XLSX workbook's first sheet."""
    if path.suffix.lower() in XLSX_SUFFIXES:
        with _open_xlsx(path) as sheet:
            yield sheet
        return
    with path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh, strict=True)
        try:
            header = _trim([c.strip() for c in next(reader, [])])
        except csv.Error as exc:
            raise UsageError(f"{path}: malformed CSV header: {exc}") from None
        if not header:
            raise UsageError(f"{path}: empty file (expected a header row)")
        yield Sheet(header, _csv_rows(reader, len(header), reader.line_num))


@contextmanager
def _open_xlsx(path: Path) -> Iterator[Sheet]:
    import zipfile

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{path}: not an Excel workbook (.xlsx) ({reason})") from None
    try:
        if not wb.worksheets:
            raise UsageError(f"{path}: the workbook has no sheet")
        ws = wb.worksheets[0]  # form and quiz exports put the responses on the first sheet
        first = next(ws.iter_rows(min_row=1, max_row=1, values_only=True), ())
        header = _trim([cell_text(v).strip() for v in first])
        if not header:
            raise UsageError(f"{path}: the first sheet is empty (expected a header row)")
        yield Sheet(header, _xlsx_rows(ws, len(header)))
    finally:
        wb.close()


def read_header(path: Path) -> list[str]:
    with open_sheet(path) as sheet:
        return sheet.header

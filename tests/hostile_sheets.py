"""Hostile spreadsheets (issue 27), shared by tests/test_hostile_sheets.py and
benchmarks/hostile_batch.py. Each writer builds a small workbook whose sheet or shared strings
are replaced by the hostile XML, written in pieces so the writer itself stays small in memory."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

NS = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
HEAD = (b'<row r="1"><c r="A1" t="inlineStr"><is><t>Email Address</t></is></c>'
        b'<c r="B1" t="inlineStr"><is><t>q05</t></is></c></row>')
SHEET = "xl/worksheets/sheet1.xml"
ANSWER = b"Scaling matters for kNN and SVM because distances mix units; trees split per feature."


def _base() -> zipfile.ZipFile:
    import io

    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["Email Address", "q05"])
    wb.active.append(["a@x.org", "x"])
    buf = io.BytesIO()
    wb.save(buf)
    return zipfile.ZipFile(buf)


def _row(r: int, email: bytes, answer: bytes) -> bytes:
    return (b'<row r="%d"><c r="A%d" t="inlineStr"><is><t>%s</t></is></c>'
            b'<c r="B%d" t="inlineStr"><is><t>%s</t></is></c></row>') % (r, r, email, r, answer)


def write_workbook(path: Path, sheet: Callable[[zipfile.ZipExtFile], None] | bytes,
                   shared: Callable[[zipfile.ZipExtFile], None] | None = None) -> Path:
    """A workbook whose sheet1 (and, when given, shared-strings part) is written by a callable
    (streamed) or given as bytes. The shared-strings part is registered in the manifest."""
    src = _base()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name in src.namelist():
            data = src.read(name)
            if name == SHEET:
                continue
            if shared is not None and name == "[Content_Types].xml":
                data = data.replace(b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                                    b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
            z.writestr(name, data)
        with z.open(SHEET, "w", force_zip64=True) as fh:
            if callable(sheet):
                sheet(fh)
            else:
                fh.write(sheet)
        if shared is not None:
            with z.open("xl/sharedStrings.xml", "w", force_zip64=True) as fh:
                shared(fh)
    return path


def sheet_of(rows: Iterable[bytes], dimension: bytes = b"") -> bytes:
    return b"<worksheet " + NS + b">" + dimension + b"<sheetData>" + HEAD + b"".join(rows) + b"</sheetData></worksheet>"


def row_gap(path: Path, number: int = 999_999_999_999) -> Path:
    """H1: one answer row numbered `number` (4.7 KB)."""
    return write_workbook(path, sheet_of([_row(2, b"b@x.org", ANSWER), _row(number, b"a@x.org", ANSWER)]))


def cell_bomb(path: Path, mib: int = 1024) -> Path:
    """H2: one answer cell of `mib` MiB of 'a' (about 1 KB per MiB compressed), then a good row."""
    def sheet(fh: zipfile.ZipExtFile) -> None:
        fh.write(b"<worksheet " + NS + b"><sheetData>" + HEAD + b'<row r="2"><c r="A2" t="inlineStr"><is><t>'
                 b'a@x.org</t></is></c><c r="B2" t="inlineStr"><is><t>')
        block = b"a" * (1 << 20)
        for _ in range(mib):
            fh.write(block)
        fh.write(b"</t></is></c></row>" + _row(3, b"b@x.org", ANSWER) + b"</sheetData></worksheet>")

    return write_workbook(path, sheet)


def shared_bomb(path: Path, count: int = 1, mib: int = 1024) -> Path:
    """H2: `count` shared strings of `mib` MiB each; row 2 uses the first, row 3 a short one."""
    def sheet(fh: zipfile.ZipExtFile) -> None:
        fh.write(sheet_of([b'<row r="2"><c r="A2" t="inlineStr"><is><t>a@x.org</t></is></c><c r="B2" t="s"><v>0</v></c>'
                           b'</row>', b'<row r="3"><c r="A3" t="inlineStr"><is><t>b@x.org</t></is></c><c r="B3" t="s">'
                           b'<v>%d</v></c></row>' % count]))

    def shared(fh: zipfile.ZipExtFile) -> None:
        fh.write(b"<sst " + NS + b">")
        block = b"a" * (1 << 20)
        for _ in range(count):
            fh.write(b"<si><t>")
            for _ in range(mib):
                fh.write(block)
            fh.write(b"</t></si>")
        fh.write(b"<si><t>" + ANSWER + b"</t></si></sst>")

    return write_workbook(path, sheet, shared)


def wide_dimension(path: Path, rows: int = 2000) -> Path:
    """M8: a forged <dimension ref="A1:XFD1048576"> over `rows` real rows."""
    body = [_row(r, b"s%d@x.org" % r, ANSWER) for r in range(2, rows + 2)]
    return write_workbook(path, sheet_of(body, b'<dimension ref="A1:XFD1048576"/>'))


def damaged(path: Path) -> Path:
    """H6: a workbook whose sheet's deflate stream has 20 flipped bytes."""
    import struct

    rows = [_row(r, b"s%d@x.org" % r, ANSWER + b" %d" % r) for r in range(2, 40)]
    write_workbook(path, sheet_of(rows))
    data = bytearray(path.read_bytes())
    info = zipfile.ZipFile(path).getinfo(SHEET)
    off = info.header_offset
    n, e = struct.unpack("<HH", data[off + 26:off + 30])
    start = off + 30 + n + e
    for k in range(start + 40, start + 60):
        data[k] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def error_cells(path: Path) -> Path:
    """L9: answer cells holding Excel error values, and a good one."""
    rows = [b'<row r="2"><c r="A2" t="inlineStr"><is><t>e2@x.org</t></is></c><c r="B2" t="e"><v>#DIV/0!</v></c></row>',
            b'<row r="3"><c r="A3" t="inlineStr"><is><t>e3@x.org</t></is></c><c r="B3" t="e"><f>NA()</f><v>#N/A</v></c>'
            b'</row>', _row(4, b"e4@x.org", ANSWER)]
    return write_workbook(path, sheet_of(rows))

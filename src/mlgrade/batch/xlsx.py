"""Read one sheet of an XLSX workbook as rows of text cells, in bounded memory and time.

openpyxl reads the workbook's small structural parts (which sheets, where they live, which cell
styles are dates). The two parts that grow with the data, the sheet and its shared-strings
table, are parsed here with expat directly, because openpyxl's reader trusts the file:
- it yields an empty row for every row number a sheet skips, and pads each row to the width
  the sheet's `<dimension>` claims (one row numbered 999,999,999,999 took days);
- it builds each cell's and each shared string's text whole (a 1 MB file inflating one cell to
  1 GiB cost 2-3 GB of memory).
Here rows come out as they are present, a cell or row over MAX_ROW_CHARS is a skipped row whose
text is never held, each part stops at MAX_PART_BYTES of XML, the shared strings kept (spooled
to a temporary file, 8 bytes per string in memory) stop at MAX_SHARED_BYTES, and a document
type declaration (the door to entity expansion) is refused.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

MAX_PART_BYTES = 512 << 20  # uncompressed XML of one sheet or of the shared strings
MAX_SHARED_BYTES = 256 << 20  # shared-string text kept (on disk) for one workbook
MAX_SMALL_PART_BYTES = 32 << 20  # the structural parts openpyxl reads whole (workbook, styles, rels)
MAX_ROWS = 1_048_576  # Excel's own limits
MAX_COLUMNS = 16_384
_CHUNK = 1 << 16
_SHARED_PART = re.compile(r"xl/sharedStrings\d*\.xml", re.IGNORECASE)  # bounded by SharedStrings itself
_CELL_REF = re.compile(r"([A-Za-z]{1,3})(\d*)$")


class Damaged(Exception):
    """A part of the workbook that cannot be decompressed or parsed; the message says why."""


class TooLarge(Exception):
    """A part of the workbook over its bound; the message says which and how large."""


def _local(name: str) -> str:
    return name.rpartition(":")[2]  # `x:row` and `row` alike: writers differ in prefixes


def _refuse_dtd(*_: Any) -> None:
    raise Damaged("a document type declaration (DTD) is not allowed in a workbook")


def _parser() -> Any:
    import pyexpat

    p = pyexpat.ParserCreate()
    p.buffer_text = True
    p.buffer_size = _CHUNK
    p.StartDoctypeDeclHandler = _refuse_dtd
    p.EntityDeclHandler = _refuse_dtd
    return p


def _parse(archive: Any, part: str, parser: Any, what: str, discarding: Callable[[], bool]) -> Iterator[None]:
    """Feed `part` to `parser` a chunk at a time, yielding after each chunk so the caller can
    hand out what the handlers collected. Decompression and XML errors become Damaged; more
    than MAX_PART_BYTES of XML becomes TooLarge. While `discarding()` (the text being read is
    over its limit and will be dropped), a chunk with no markup (no `<`, no `&`) is text the
    handlers would drop: it is not parsed at all, so a bomb costs its inflation, not its parse."""
    import zipfile

    fed = 0
    try:
        with archive.open(part) as src:
            while chunk := src.read(_CHUNK):
                fed += len(chunk)
                if fed > MAX_PART_BYTES:
                    raise TooLarge(f"{what} is over {MAX_PART_BYTES >> 20} MB of XML uncompressed")
                if discarding() and b"<" not in chunk and b"&" not in chunk:
                    yield
                    continue
                parser.Parse(chunk, False)
                yield
        parser.Parse(b"", True)
        yield
    except (zlib.error, zipfile.BadZipFile, EOFError, OSError) as exc:
        kind = "zlib" if isinstance(exc, zlib.error) else type(exc).__name__
        raise Damaged(f"{what} is damaged ({kind}: {exc})") from None
    except (Damaged, TooLarge):
        raise
    except Exception as exc:  # pyexpat.ExpatError and anything a handler met on bad markup
        raise Damaged(f"{what} is not well-formed XML ({type(exc).__name__}: {exc})") from None


def check_part_sizes(archive: Any) -> None:
    """Refuse up front a structural part (the manifest, the workbook, its relationships, the
    styles: openpyxl reads those whole) declaring more XML than any workbook has; the zip reader
    never inflates a member past its declared size. Media and the sheets are not checked here."""
    for info in archive.infolist():
        name = info.filename
        structural = name in ("[Content_Types].xml", "_rels/.rels") or re.fullmatch(r"xl/(_rels/)?[^/]+", name)
        if structural and not _SHARED_PART.fullmatch(name) and info.file_size > MAX_SMALL_PART_BYTES:
            raise TooLarge(f"its part {info.filename} is {info.file_size:,} bytes uncompressed "
                           f"(over {MAX_SMALL_PART_BYTES >> 20} MB)")


# --------------------------------------------------------------------------- shared strings


class Oversize(str):
    """A shared string over the limit, never held (its value is the limit): a cell using it skips its row."""


class SharedStrings:
    """A workbook's shared-strings table spooled to a temporary file, indexed like a list."""

    def __init__(self, archive: Any, part: str, limit: int):
        import tempfile

        self._fh = tempfile.TemporaryFile()
        self._ends = array("q")
        self._oversize: set[int] = set()  # indexes of strings over the limit
        self._limit = limit
        try:
            self._read(archive, part)
        except BaseException:
            self.close()
            raise

    def _read(self, archive: Any, part: str) -> None:
        parts: list[str] = []
        state = {"si": False, "t": False, "rph": 0, "n": 0, "end": 0}

        def start(name: str, _attrs: Any) -> None:
            tag = _local(name)
            if tag == "si":
                state["si"], state["n"] = True, 0
                parts.clear()
            elif tag == "rPh":
                state["rph"] += 1  # phonetic guide: not part of the text a person sees
            elif tag == "t" and state["si"] and not state["rph"]:
                state["t"] = True

        def end(name: str) -> None:
            tag = _local(name)
            if tag == "t":
                state["t"] = False
            elif tag == "rPh":
                state["rph"] -= 1
            elif tag == "si":
                state["si"] = False
                if state["n"] > self._limit:
                    self._oversize.add(len(self._ends))
                    self._ends.append(state["end"])
                    return
                # the same cleaning as openpyxl's read_string_table
                data = "".join(parts).replace("x005F_", "").encode("utf-8", "surrogatepass")
                parts.clear()
                state["end"] += len(data)
                if state["end"] > MAX_SHARED_BYTES:
                    raise TooLarge(f"its shared strings hold over {MAX_SHARED_BYTES >> 20} MB of text")
                self._fh.write(data)
                self._ends.append(state["end"])

        def text(data: str) -> None:
            if state["t"]:
                state["n"] += len(data)
                if state["n"] <= self._limit:
                    parts.append(data)
                else:
                    parts.clear()  # over the limit: counted, never held

        p = _parser()
        p.StartElementHandler, p.EndElementHandler, p.CharacterDataHandler = start, end, text
        for _ in _parse(archive, part, p, "its shared-strings table", lambda: state["n"] > self._limit):
            pass

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i: int) -> str:
        if i in self._oversize:
            return Oversize(f"{self._limit:,}")
        start = self._ends[i - 1] if i > 0 else 0
        self._fh.seek(start)
        return self._fh.read(self._ends[i] - start).decode("utf-8", "surrogatepass")

    def close(self) -> None:
        self._fh.close()


# --------------------------------------------------------------------------- worksheet rows


@dataclass
class SheetRow:
    number: int
    cells: dict[int, str]  # 0-based column -> text, non-empty cells only
    error: str | None = None
    last: bool = False  # an error that ends the sheet: nothing after it is read


@dataclass
class CellStyles:
    """What turns a number into a date: the style ids openpyxl found to be date formats."""

    dates: set[int]
    durations: set[int]
    epoch: Any


def _column(ref: str | None, previous: int) -> int:
    """0-based column of a cell reference like `B7`; a cell without one follows the previous."""
    if ref:
        m = _CELL_REF.match(ref)
        if m:
            n = 0
            for ch in m.group(1).upper():
                n = n * 26 + ord(ch) - 64
            return n - 1
    return previous + 1


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


def _cell_value(kind: str, style: int, raw: str, strings: Any, styles: CellStyles) -> str:
    """A cell's text as a person sees it; an Excel error value (#DIV/0!, #N/A…) is no text at all."""
    if kind == "s":
        index = int(raw)
        if index < 0:  # a list would count it from the end: another cell's text
            raise IndexError(index)
        return strings[index]  # IndexError / ValueError: the caller skips the row
    if kind in ("inlineStr", "str"):
        return raw
    if kind == "e":
        return ""
    if kind == "b":
        return "TRUE" if raw.strip() in ("1", "true") else "FALSE"
    if not raw:
        return ""
    try:
        if kind == "d":
            from openpyxl.utils.datetime import from_ISO8601

            return cell_text(from_ISO8601(raw))
        number = float(raw) if any(ch in raw for ch in ".eE") else int(raw)
        if style in styles.dates:
            from openpyxl.utils.datetime import from_excel

            return cell_text(from_excel(number, styles.epoch, timedelta=style in styles.durations))
        return cell_text(number)
    except (ValueError, OverflowError, TypeError):
        return raw  # a value its type cannot hold: shown as written


def sheet_rows(archive: Any, part: str, strings: Any, styles: CellStyles, width: int,
               max_chars: int) -> Iterator[SheetRow]:
    """The rows present in a worksheet part, in file order. Cells at or past column `width` are
    not kept (a non-empty one makes the row an error: more cells than the header). A row over
    `max_chars` characters, a row number past Excel's last row, or a cell that cannot be read
    is an error row; damage or a part over MAX_PART_BYTES is a last error row (`last`: its
    error says what stopped the reading)."""
    done: list[SheetRow] = []
    st: dict[str, Any] = {"row": None, "number": 0, "col": -1, "chars": 0, "capture": False, "is": False,
                          "rph": 0, "kind": "n", "style": 0, "cell": None}
    buf: list[str] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        tag = _local(name)
        if tag == "c":
            if st["row"] is None:
                return
            st["cell"] = _column(attrs.get("r"), st["col"])
            st["col"] = st["cell"]
            st["kind"] = attrs.get("t", "n")
            s = attrs.get("s", "0")
            st["style"] = int(s) if s.isdigit() else 0
            buf.clear()
        elif tag == "row":
            r = attrs.get("r", "")
            st["number"] = int(r) if r.isdigit() and len(r) < 20 else st["number"] + 1
            st["row"] = SheetRow(st["number"], {})
            st["col"], st["chars"] = -1, 0
            if st["number"] > MAX_ROWS:
                st["row"].error = f"row number {st['number']:,} is past the last row a sheet can have ({MAX_ROWS:,})"
        elif st["cell"] is None:
            return
        elif tag == "v" and not st["is"]:
            st["capture"] = True
        elif tag == "is":
            st["is"] = True
        elif tag == "rPh":
            st["rph"] += 1
        elif tag == "t" and st["is"] and not st["rph"]:
            st["capture"] = True

    def end(name: str) -> None:
        tag = _local(name)
        row: SheetRow | None = st["row"]
        if tag in ("v", "t"):
            st["capture"] = False
        elif tag == "is":
            st["is"] = False
        elif tag == "rPh":
            st["rph"] -= 1
        elif tag == "c" and row is not None and st["cell"] is not None:
            col, st["cell"] = st["cell"], None
            if row.error is not None:
                return
            raw = "".join(buf)
            buf.clear()
            try:
                value = _cell_value(st["kind"], st["style"], raw, strings, styles)
            except (IndexError, ValueError):
                row.error = f"cell {_ref(col, row.number)} names shared string {raw[:20]!r}, which does not exist"
                return
            if isinstance(value, Oversize):
                row.error = f"cell {_ref(col, row.number)} is over {value} characters (far over the answer limit)"
                return
            if not value:
                return
            st["chars"] += len(value)
            if st["chars"] > max_chars:
                row.error = f"row is over {max_chars:,} characters (far over the answer limit)"
            elif col >= width:
                if value.strip():
                    row.error = f"row has a cell in column {col + 1:,} but the header has {width}"
            else:
                row.cells[col] = value
        elif tag == "row" and row is not None:
            done.append(row)
            st["row"] = None

    def text(data: str) -> None:
        row = st["row"]
        if not st["capture"] or row is None or row.error is not None:
            return
        st["chars"] += len(data)
        if st["chars"] > max_chars:
            row.error = f"row is over {max_chars:,} characters (far over the answer limit)"
            buf.clear()  # never held past the limit
        else:
            buf.append(data)

    p = _parser()
    p.StartElementHandler, p.EndElementHandler, p.CharacterDataHandler = start, end, text
    try:
        over = lambda: st["capture"] and st["row"] is not None and st["row"].error is not None  # noqa: E731
        for _ in _parse(archive, part, p, "the worksheet", over):
            ready = done[:]
            done.clear()
            yield from ready
    except (Damaged, TooLarge) as exc:
        yield from done
        row = st["row"]
        if row is not None and row.error is not None:
            yield row  # the row that was over the limit when the part ran out
        number = (row.number if row is not None and row.error is None else st["number"] + 1)
        yield SheetRow(number, {}, str(exc), last=True)


def _ref(col: int, row: int) -> str:
    from openpyxl.utils import get_column_letter

    return f"{get_column_letter(col + 1)}{row}" if col < MAX_COLUMNS else f"column {col + 1} row {row}"

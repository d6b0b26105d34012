"""Stream answers out of batch input files: JSONL, CSV, a YAML list, or a folder of answer files.

Every reader yields `BatchItem`s one at a time (memory stays flat on a 100k-answer file).
A bad row never stops the batch and is never dropped: it comes out as an item with a
`skip_reason` naming the problem, and `source` says where it is (`file:line`).

Rows without an `id` get a stable one: a hash of question id, answer and position in the
source, so rerunning the same command gives the same ids (that is what makes resume work).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError, quote_names
from ..rubrics import RubricBank
from .answer_dir import read_answer_dir
from .items import BatchItem, item_from_row, stable_id
# XLSX is always wide (batch/wide.py); a .csv is wide when it lacks question_id/answer. The CSV
# line counter and the row bound are shared with the wide reader, so they live in sheets.py.
from .sheets import _SURROGATE, MALFORMED_CSV, MAX_ROW_CHARS, XLSX_SUFFIXES, csv_records, open_csv

if TYPE_CHECKING:
    from .columns import WideOptions

JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv",)
YAML_SUFFIXES = (".yaml", ".yml")
# Refused with how to convert, not read: the libraries that read them (xlrd, odfpy, python-calamine)
# load a whole sheet or document into memory, which a hostile file turns into a memory bomb, and
# every form and quiz export offers .xlsx or .csv
OTHER_SHEET_SUFFIXES = {".xls": "old Excel (.xls)", ".xlsb": "binary Excel (.xlsb)", ".ods": "OpenDocument (.ods)",
                        ".numbers": "Apple Numbers"}


def _bad_line(path: Path, line_no: int, text: str, reason: str) -> BatchItem:
    position = f"{path.name}:{line_no}"
    return BatchItem(id=stable_id("", text, position), question_id="", answer="", source=f"{path}:{line_no}",
                     skip_reason=reason)


def _utf8_problem(raw: bytes) -> str | None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
    return None


def read_jsonl(path: Path, bank: RubricBank) -> Iterator[BatchItem]:
    """Each line decoded and parsed on its own: bad bytes, bad JSON or absurd nesting make that
    line a skipped row and never stop the file."""
    with path.open("rb") as fh:
        for line_no, (raw, size) in enumerate(_bounded_lines(fh, 4 * MAX_ROW_CHARS), start=1):
            if line_no == 1 and raw.startswith(codecs_bom):
                raw = raw[len(codecs_bom):]
            if size > len(raw):  # never held whole: a 50 MB line costs its first 16 MB at most
                yield _bad_line(path, line_no, f"{line_no}:{size}",
                                f"line is {size:,} bytes, far over the answer limit (not read)")
                continue
            if not raw.strip():
                continue
            problem = _utf8_problem(raw)
            if problem is not None:
                yield _bad_line(path, line_no, raw.hex()[:200], problem)
                continue
            text = raw.decode("utf-8").strip()
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                yield _bad_line(path, line_no, text, f"invalid JSON: {exc.msg} (column {exc.colno})")
                continue
            except RecursionError:
                yield _bad_line(path, line_no, text[:1000], "JSON nested too deeply")
                continue
            yield item_from_row(row, f"{path}:{line_no}", f"{path.name}:{line_no}", bank)


codecs_bom = b"\xef\xbb\xbf"


def _bounded_lines(fh: Any, limit: int) -> Iterator[tuple[bytes, int]]:
    """(line, its full size) for each line; a line longer than `limit` bytes is returned cut
    short (the rest is read and dropped in chunks), so one hostile line cannot exhaust memory."""
    while True:
        line = fh.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit or line.endswith(b"\n"):
            yield line, len(line)
            continue
        size = len(line)
        while True:
            chunk = fh.readline(1 << 20)
            size += len(chunk)
            if not chunk or chunk.endswith(b"\n"):
                break
        yield line[:0], size


def read_csv(path: Path, bank: RubricBank) -> Iterator[BatchItem]:
    with open_csv(path) as (header, reader, lines):
        columns = [c.strip() for c in header]
        missing = [c for c in ("question_id", "answer") if c not in columns]
        if missing:
            raise UsageError(f"{path}: CSV header lacks column(s) {', '.join(missing)} "
                             f"(found: {quote_names(columns) or 'none'})")
        for record in csv_records(reader, lines):
            line_no, cells = record.line, record.cells
            if record.error is not None:
                # the id hashes where an over-long record ended; broken quoting ends the file
                end = "" if record.error.startswith(MALFORMED_CSV) else str(lines.line_no)
                yield _bad_line(path, line_no, end, record.error)
                continue
            if not cells:
                continue
            if len(cells) > len(columns):  # more cells than header columns
                yield _bad_line(path, line_no, json.dumps(cells)[:1000],
                                f"row has {len(cells)} cells but the header has {len(columns)}")
                continue
            row = dict(zip(columns, cells))
            if any(_SURROGATE.search(c) for c in cells):
                yield _bad_line(path, line_no, repr(cells)[:1000], "not valid UTF-8")
                continue
            yield item_from_row(row, f"{path}:{line_no}", f"{path.name}:{line_no}", bank)


def read_yaml(path: Path, bank: RubricBank) -> Iterator[BatchItem]:
    """A YAML list of rows, composed one item at a time so a huge file is never held whole.
    Aliases are never expanded: an item holding one is skipped (an alias bomb costs nothing)."""
    import yaml

    from ..textfiles import ALIAS_PROBLEM, no_alias_loader

    try:
        fh = path.open("r", encoding="utf-8")
        loader = no_alias_loader(fh)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        loader.get_event()  # StreamStart
        if loader.check_event(yaml.StreamEndEvent):
            return
        loader.get_event()  # DocumentStart
        if not loader.check_event(yaml.SequenceStartEvent):
            raise UsageError(f"{path}: expected a YAML list of answers (each with question_id and answer)")
        loader.get_event()
        index = 0
        while not loader.check_event(yaml.SequenceEndEvent):
            loader.alias_mark = None
            node = loader.compose_node(None, index)  # type: ignore[arg-type]
            line_no = node.start_mark.line + 1
            if loader.alias_mark is not None:
                yield _bad_line(path, line_no, str(index), f"{ALIAS_PROBLEM} (line {loader.alias_mark.line + 1})")
            else:
                try:
                    row = loader.construct_document(node)
                except yaml.YAMLError as exc:
                    yield _bad_line(path, line_no, str(index), f"invalid YAML item: {exc}")
                else:
                    yield item_from_row(row, f"{path}:{line_no}", f"{path.name}:{line_no}", bank)
            loader.anchors = {}
            index += 1
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not valid UTF-8 text (byte offset {exc.start} of a chunk); save it as UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise UsageError(f"{path}{where}: malformed YAML: {getattr(exc, 'problem', None) or exc}") from None
    finally:
        loader.dispose()
        fh.close()


def reader_for(path: Path):  # type: ignore[no-untyped-def]
    if path.is_dir():
        return read_answer_dir
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return read_jsonl
    if suffix in CSV_SUFFIXES:
        return read_csv
    if suffix in YAML_SUFFIXES:
        return read_yaml
    if suffix in XLSX_SUFFIXES:
        return read_wide
    if suffix == ".json":
        raise UsageError(f"{path}: use JSON Lines (.jsonl, one object per line), not a single .json document")
    if suffix in OTHER_SHEET_SUFFIXES:
        raise UsageError(f"{path}: {OTHER_SHEET_SUFFIXES[suffix]} files are not read: save it as .xlsx or .csv "
                         f"(Excel or LibreOffice: File > Save As; or `soffice --headless --convert-to xlsx {path.name}`)")
    raise UsageError(f"{path}: unsupported input type {suffix or '(no suffix)'}: "
                     "use .jsonl, .csv, .xlsx, .yaml or a folder of qNN-*.md/.txt files")


def check_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Fail fast (exit 2) on a missing or unsupported input before any work starts."""
    paths = []
    for raw in inputs:
        path = Path(raw)
        if str(raw) == "-":
            raise UsageError("batch reads files, not stdin: save the answers to a .jsonl file first")
        if not path.exists():
            raise UsageError(f"{path}: no such file or directory")
        if not path.is_dir() and not path.is_file():  # a FIFO or device would block or never end: not opened
            raise UsageError(f"{path}: not a regular file or folder (a FIFO, device or socket)")
        reader_for(path)
        paths.append(path)
    if not paths:
        raise UsageError("no input given: pass one or more .jsonl/.csv/.yaml files or answer folders")
    return paths


def check_starts(paths: Iterable[Path], bank: RubricBank) -> None:
    """Read the start of each long file (a CSV header, a YAML list's opening, the first row) so one
    that cannot be read at all fails with its one-line error before any progress is drawn. Wide
    files and folders are left to `inspect_wide` and to their rows."""
    from .wide import is_wide

    for path in paths:
        if path.is_dir() or is_wide(path):
            continue
        rows = reader_for(path)(path, bank)
        try:
            next(rows, None)
        finally:
            rows.close()


def read_wide(path: Path, bank: RubricBank, wide: WideOptions | None = None) -> Iterator[BatchItem]:
    """A form/quiz export (one row per candidate, one column per question): see batch/wide.py.
    The source is `file:line:column`; an empty cell is a skipped "no answer"."""
    from .wide import wide_answers

    for a in wide_answers(path, bank, wide):
        source = f"{path}:{a.line}:{a.column}" if a.column else f"{path}:{a.line}"
        yield BatchItem(id=a.id, question_id=a.question_id, answer=a.answer, source=source, candidate=a.candidate,
                        skip_reason=a.skip_reason)


def iter_items(inputs: Iterable[str | Path], bank: RubricBank, wide: WideOptions | None = None) -> Iterator[BatchItem]:
    """Every item of every input, in input order. `wide`: how to map wide files' columns."""
    from .wide import is_wide

    for path in check_inputs(inputs):
        if is_wide(path):
            yield from read_wide(path, bank, wide)
        else:
            yield from reader_for(path)(path, bank)


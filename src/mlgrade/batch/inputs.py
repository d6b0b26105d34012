"""Stream answers out of batch input files: JSONL, CSV, a YAML list, or a folder of answer files.

Every reader yields `BatchItem`s one at a time (memory stays flat on a 100k-answer file).
A bad row never stops the batch and is never dropped: it comes out as an item with a
`skip_reason` naming the problem, and `source` says where it is (`file:line`).

Rows without an `id` get a stable one: a hash of question id, answer and position in the
source, so rerunning the same command gives the same ids (that is what makes resume work).
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError, quote_name, quote_names
from ..rubrics import RubricBank, normalise_id
# XLSX is always wide (batch/wide.py); a .csv is wide when it lacks question_id/answer. The CSV
# line counter and the row bound are shared with the wide reader, so they live in sheets.py.
from .sheets import _SURROGATE, MAX_ROW_CHARS, XLSX_SUFFIXES, _Lines, sniff_delimiter

if TYPE_CHECKING:
    from .columns import WideOptions

ANSWER_FILE_SUFFIXES = (".md", ".txt")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv",)
YAML_SUFFIXES = (".yaml", ".yml")
# q07-alice.md, Q7_bob.txt, q07.md: the question id, then an optional separator and candidate name
_ANSWER_FILE_NAME = re.compile(r"^(q?\d{1,3})(?:[-_. ](.*))?$", re.IGNORECASE)


@dataclass
class BatchItem:
    id: str
    question_id: str  # normalised when the question is known, else as given
    answer: str
    source: str  # "file:line" (or "file" for one answer per file)
    candidate: str | None = None
    skip_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.skip_reason is None


def stable_id(question_id: str, answer: str, position: str) -> str:
    """Readable and deterministic: `q07-` plus 12 hex digits of a hash of the row."""
    digest = hashlib.sha256(f"{question_id}\0{answer}\0{position}".encode("utf-8", "surrogatepass")).hexdigest()[:12]
    prefix = re.sub(r"[^a-z0-9]+", "", question_id.lower())[:12] or "row"
    return f"{prefix}-{digest}"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def item_from_row(row: Any, source: str, position: str, bank: RubricBank) -> BatchItem:
    """Validate one row (a mapping with question_id, answer, optional id, candidate)."""
    if not isinstance(row, Mapping):
        return BatchItem(id=stable_id("", repr(row), position), question_id="", answer="", source=source,
                         skip_reason=f"expected an object with question_id and answer, got {type(row).__name__}")
    raw_qid = _text(row.get("question_id"))
    answer = row.get("answer")
    candidate = _text(row.get("candidate"))
    given_id = _text(row.get("id"))
    qid = normalise_id(raw_qid) if raw_qid and raw_qid.strip() else ""
    answer_text = answer if isinstance(answer, str) else ""
    item = BatchItem(id=given_id.strip() if given_id and given_id.strip() else stable_id(qid, answer_text, position),
                     question_id=qid or (raw_qid or ""), answer=answer_text, source=source, candidate=candidate or None)
    if not qid:
        item.skip_reason = "missing question_id"
    elif qid not in bank.rubrics:
        item.skip_reason = f"unknown question id {quote_name(raw_qid)}"
    elif answer is None:
        item.skip_reason = "missing answer"
    elif not isinstance(answer, str):
        item.skip_reason = f"answer must be text, got {type(answer).__name__}"
    return item


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
    with path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        delimiter = sniff_delimiter(fh.readline(MAX_ROW_CHARS))  # `;` from European Excel
        fh.seek(0)
        lines = _Lines(fh)
        # strict: an unterminated quote is an error, not an answer that silently swallows the file's tail
        reader = csv.reader(lines, strict=True, delimiter=delimiter)
        old_limit = csv.field_size_limit()
        csv.field_size_limit(MAX_ROW_CHARS)  # our own bound; restored below (the limit is process-wide)
        try:
            try:
                header = next(reader)
            except StopIteration:
                header = []
            except csv.Error as exc:
                raise UsageError(f"{path}: unreadable CSV header ({exc})") from None
            columns = [c.strip() for c in header]
            missing = [c for c in ("question_id", "answer") if c not in columns]
            if missing:
                raise UsageError(f"{path}: CSV header lacks column(s) {', '.join(missing)} "
                                 f"(found: {quote_names(columns) or 'none'})")
            while True:
                line_no = lines.line_no + 1  # a quoted answer may span several lines: report the first
                lines.quotes = 0
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    if "field larger than field limit" in str(exc):
                        lines.skip_rest_of_record()
                        yield _bad_line(path, line_no, str(lines.line_no),
                                        f"row is over {MAX_ROW_CHARS:,} characters (far over the answer limit)")
                        continue
                    # the reader cannot resynchronise after a broken quote: report the row, stop this file
                    yield _bad_line(path, line_no, "", f"malformed CSV from this line on: {exc}")
                    return
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
        finally:
            csv.field_size_limit(old_limit)


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


_KIND = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
         stat.S_IFSOCK: "a socket"}


def _entry_problem(entry: os.DirEntry[str]) -> tuple[str | None, os.stat_result | None]:
    """Why a folder entry cannot be an answer file (None when it is a regular file), and its stat.
    Uses stat only: a FIFO or device is never opened."""
    try:
        st = entry.stat(follow_symlinks=True)
    except OSError as exc:
        if entry.is_symlink():
            if exc.errno == errno.ELOOP:
                return "symbolic link loop", None
            if exc.errno == errno.ENOENT:
                return "dangling symbolic link (its target does not exist)", None
        return f"cannot read ({exc.strerror})", None
    if stat.S_ISDIR(st.st_mode):
        return "a directory, not an answer file", st
    if not stat.S_ISREG(st.st_mode):
        return f"{_KIND.get(stat.S_IFMT(st.st_mode), 'not a regular file')}, not an answer file (not opened)", st
    return None, st


def read_answer_dir(path: Path, bank: RubricBank) -> Iterator[BatchItem]:
    """One answer per file, named `<question id>[-candidate].md|.txt` (q07-alice.md). Links that
    lead nowhere, FIFOs, devices, sockets, subfolders (not read) and files of other types are
    skipped rows with the reason; hidden entries (.DS_Store) are passed over."""
    with os.scandir(path) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        file = Path(entry.path)
        answer_like = file.suffix.lower() in ANSWER_FILE_SUFFIXES
        problem, st = _entry_problem(entry)
        if entry.name.startswith("."):
            continue  # .DS_Store, .git and the like: the system's, not the candidates'
        if problem is not None:
            if st is not None and stat.S_ISDIR(st.st_mode) and not answer_like:
                problem = "a subfolder: folders are not read recursively (pass it as an input of its own)"
            yield BatchItem(id=stable_id("", entry.name, entry.name), question_id="", answer="",
                            source=str(file), skip_reason=problem)
            continue
        if not answer_like:
            yield BatchItem(id=stable_id("", entry.name, entry.name), question_id="", answer="", source=str(file),
                            skip_reason=f"unsupported file type {file.suffix or '(no suffix)'}: answer files in a "
                                        "folder are .md or .txt")
            continue
        m = _ANSWER_FILE_NAME.match(file.stem)
        source = str(file)
        if not m:
            yield BatchItem(id=stable_id("", file.name, file.name), question_id="", answer="", source=source,
                            skip_reason="file name does not start with a question id (expected e.g. q07-alice.md)")
            continue
        if st is not None and st.st_size > MAX_ROW_CHARS:
            yield BatchItem(id=file.stem, question_id=normalise_id(m.group(1)), answer="", source=source,
                            skip_reason=f"file is {st.st_size:,} bytes, far over the answer limit (not read)")
            continue
        try:
            # O_NONBLOCK: should the file have been swapped for a FIFO since stat, open returns at once
            fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            with os.fdopen(fd, "rb") as fh:
                if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                    raise IsADirectoryError(errno.EINVAL, "not a regular file")
                data = fh.read(MAX_ROW_CHARS + 1)
        except OSError as exc:
            yield BatchItem(id=stable_id("", file.name, file.name), question_id=normalise_id(m.group(1)), answer="",
                            source=source, skip_reason=f"cannot read ({exc.strerror})")
            continue
        try:
            answer = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            yield BatchItem(id=stable_id("", file.name, file.name), question_id=normalise_id(m.group(1)), answer="",
                            source=source, skip_reason="file is not valid UTF-8")
            continue
        row = {"question_id": m.group(1), "answer": answer.replace("\r\n", "\n"),
               "candidate": (m.group(2) or "").strip() or None, "id": file.stem}
        yield item_from_row(row, source, file.name, bank)


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


def iter_rows(rows: Iterable[Mapping[str, Any]], bank: RubricBank, label: str = "<rows>") -> Iterator[BatchItem]:
    """Python callers may pass rows (dicts) instead of files."""
    for index, row in enumerate(rows, start=1):
        yield item_from_row(row, f"{label}:{index}", f"{label}:{index}", bank)


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


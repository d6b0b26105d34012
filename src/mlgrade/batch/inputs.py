"""Stream answers out of batch input files: JSONL, CSV, a YAML list, or a folder of answer files.

Every reader yields `BatchItem`s one at a time (memory stays flat on a 100k-answer file).
A bad row never stops the batch and is never dropped: it comes out as an item with a
`skip_reason` naming the problem, and `source` says where it is (`file:line`).

Rows without an `id` get a stable one: a hash of question id, answer and position in the
source, so rerunning the same command gives the same ids (that is what makes resume work).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..rubrics import RubricBank, normalise_id
from .sheets import XLSX_SUFFIXES  # always wide (batch/wide.py); a .csv is wide when it lacks question_id/answer

if TYPE_CHECKING:
    from .wide import WideOptions

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
        item.skip_reason = f"unknown question id {raw_qid!r}"
    elif answer is None:
        item.skip_reason = "missing answer"
    elif not isinstance(answer, str):
        item.skip_reason = f"answer must be text, got {type(answer).__name__}"
    return item


def _bad_line(path: Path, line_no: int, text: str, reason: str) -> BatchItem:
    position = f"{path.name}:{line_no}"
    return BatchItem(id=stable_id("", text, position), question_id="", answer="", source=f"{path}:{line_no}",
                     skip_reason=reason)


def read_jsonl(path: Path, bank: RubricBank) -> Iterator[BatchItem]:
    with path.open("r", encoding="utf-8", errors="surrogateescape", newline="") as fh:
        for line_no, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                yield _bad_line(path, line_no, text, f"invalid JSON: {exc.msg} (column {exc.colno})")
                continue
            yield item_from_row(row, f"{path}:{line_no}", f"{path.name}:{line_no}", bank)


def read_csv(path: Path, bank: RubricBank) -> Iterator[BatchItem]:
    with path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        # strict: an unterminated quote is an error, not an answer that silently swallows the file's tail
        reader = csv.DictReader(fh, strict=True)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in ("question_id", "answer") if c not in columns]
        if missing:
            raise UsageError(f"{path}: CSV header lacks column(s) {', '.join(missing)} "
                             f"(found: {', '.join(columns) or 'none'})")
        reader.fieldnames = columns
        start = reader.line_num
        rows = iter(reader)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as exc:
                # the reader cannot resynchronise after a broken quote: report the row, stop this file
                yield _bad_line(path, start + 1, "", f"malformed CSV from this line on: {exc}")
                return
            # line_num is the *last* physical line read; a quoted answer may span several lines
            line_no = start + 1
            start = reader.line_num
            if None in row:  # more cells than header columns
                yield _bad_line(path, line_no, json.dumps(row, default=str),
                                f"row has {len(columns) + len(row[None])} cells but the header has {len(columns)}")
                continue
            yield item_from_row(row, f"{path}:{line_no}", f"{path.name}:{line_no}", bank)


def read_yaml(path: Path, bank: RubricBank) -> Iterator[BatchItem]:
    """A YAML list of rows, composed one item at a time so a huge file is never held whole."""
    import yaml

    with path.open("r", encoding="utf-8") as fh:
        loader = yaml.SafeLoader(fh)
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
                node = loader.compose_node(None, index)  # type: ignore[arg-type]
                line_no = node.start_mark.line + 1
                try:
                    row = loader.construct_document(node)
                except yaml.YAMLError as exc:
                    yield _bad_line(path, line_no, str(index), f"invalid YAML item: {exc}")
                else:
                    yield item_from_row(row, f"{path}:{line_no}", f"{path.name}:{line_no}", bank)
                loader.anchors = {}
                index += 1
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark else ""
            raise UsageError(f"{path}{where}: malformed YAML: {getattr(exc, 'problem', None) or exc}") from None
        finally:
            loader.dispose()


def read_answer_dir(path: Path, bank: RubricBank) -> Iterator[BatchItem]:
    """One answer per file, named `<question id>[-candidate].md|.txt` (q07-alice.md)."""
    for file in sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in ANSWER_FILE_SUFFIXES):
        m = _ANSWER_FILE_NAME.match(file.stem)
        source = str(file)
        if not m:
            yield BatchItem(id=stable_id("", file.name, file.name), question_id="", answer="", source=source,
                            skip_reason="file name does not start with a question id (expected e.g. q07-alice.md)")
            continue
        try:
            answer = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            yield BatchItem(id=stable_id("", file.name, file.name), question_id=normalise_id(m.group(1)), answer="",
                            source=source, skip_reason="file is not valid UTF-8")
            continue
        row = {"question_id": m.group(1), "answer": answer, "candidate": (m.group(2) or "").strip() or None,
               "id": file.stem}
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
        reader_for(path)
        paths.append(path)
    if not paths:
        raise UsageError("no input given: pass one or more .jsonl/.csv/.yaml files or answer folders")
    return paths


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


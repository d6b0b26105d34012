"""Read a user's text file (or standard input) with one clear error line instead of a traceback,
and load user YAML without alias expansion (a "billion laughs" file cannot blow up memory)."""

from __future__ import annotations

import codecs
import sys
from pathlib import Path
from typing import Any

from .errors import UsageError

STDIN = "-"
_CHUNK = 1 << 16


def _read_bounded(fh: Any, max_chars: int | None) -> tuple[bytes, bool]:
    """All bytes, or (when max_chars is set) at most enough of them to hold max_chars + 1
    characters; the flag says the input went on past that."""
    if max_chars is None:
        return fh.read(), False
    budget = 4 * (max_chars + 1)  # a UTF-8 character is at most 4 bytes
    chunks: list[bytes] = []
    size = 0
    while size < budget:
        chunk = fh.read(min(_CHUNK, budget - size))
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), bool(fh.read(1))


def read_text(path: Path | str, *, max_chars: int | None = None) -> str:
    """A UTF-8 text file (a byte-order mark is tolerated), or standard input for `-`.
    Missing files, folders, unreadable files and non-UTF-8 bytes raise UsageError naming the file.
    With `max_chars`, at most that many characters + 1 are read (so `/dev/zero` or an endless
    pipe cannot exhaust memory) and a longer input raises UsageError."""
    if str(path) == STDIN:
        where = "standard input"
        data, more = _read_bounded(sys.stdin.buffer, max_chars)
    else:
        path = Path(path)
        where = str(path)
        try:
            with path.open("rb") as fh:
                data, more = _read_bounded(fh, max_chars)
        except FileNotFoundError:
            raise UsageError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise UsageError(f"{path}: is a directory, not a file") from None
        except OSError as exc:
            raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    if max_chars is not None:
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        try:
            text = decoder.decode(data, final=not more)
        except UnicodeDecodeError as exc:
            raise _not_utf8(where, data, exc) from None
        if more or len(text) > max_chars:
            raise UsageError(f"{where}: the answer is over the limit of {max_chars:,} characters (reading stopped "
                             "there; set MLGRADE_MAX_ANSWER_CHARS to change it)")
        return text
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _not_utf8(where, data, exc) from None


def _not_utf8(where: str, data: bytes, exc: UnicodeDecodeError) -> UsageError:
    return UsageError(f"{where} is not valid UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                      "save it as UTF-8 and try again")


# --------------------------------------------------------------------------- YAML without aliases

ALIAS_PROBLEM = "YAML aliases (*name) are not allowed in mlgrade files: write the value out"


def no_alias_loader(stream: Any) -> Any:
    """A yaml.SafeLoader that never expands an alias: each alias is composed as null and the first
    one's position is kept in `alias_mark`. Callers check it (see `load_yaml`), so a document
    of nested aliases costs what its text costs, never its expansion."""
    import yaml

    class _NoAliasLoader(yaml.SafeLoader):
        alias_mark: Any = None

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.get_event()
                if self.alias_mark is None:
                    self.alias_mark = event.start_mark
                return yaml.ScalarNode("tag:yaml.org,2002:null", "", event.start_mark, event.end_mark)
            return super().compose_node(parent, index)

    return _NoAliasLoader(stream)


def alias_error(mark: Any) -> Exception:
    import yaml

    return yaml.MarkedYAMLError(problem=ALIAS_PROBLEM, problem_mark=mark)


def _has_alias(text: str, loader: Any) -> bool:
    """Whether the document holds an alias event. A parse error counts as one: the slow loader
    then raises it with its usual message."""
    import yaml

    try:
        return any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=loader))
    except yaml.YAMLError:
        return True


def load_yaml(text: str) -> Any:
    """One YAML document, safely: no Python objects and no aliases (a yaml.YAMLError naming the
    line is raised for the first alias). Text without `*` cannot hold an alias and takes the fast C loader;
    so does text whose `*` are not aliases (`3*3`, `zip(*`), found by the C parser's events, which
    never expand anything (an alias bomb costs its text), before the slow alias-checking loader."""
    import yaml

    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None and ("*" not in text or not _has_alias(text, fast)):
        return yaml.load(text, Loader=fast)
    if "*" not in text:
        return yaml.load(text, Loader=yaml.SafeLoader)
    loader = no_alias_loader(text)
    try:
        node = loader.get_single_node()
        if loader.alias_mark is not None:
            raise alias_error(loader.alias_mark)
        return loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


# --------------------------------------------------------------------------- files mlgrade writes
# Every command that writes a file the user names goes through `write_output`: it never writes over
# a file mlgrade did not write, never over the command's own input or a results file, and writes
# through a temporary file + rename so a failure (full disk…) leaves the old file whole.

RESULT_LINE_START = b'{"id":'  # how every line of a `batch` results file begins
RESULT_OUTCOMES = ("graded", "grader_error", "skipped")
MARK_MD = "<!-- generated by mlgrade -->"
MARK_HTML = '<meta name="generator" content="mlgrade">'
MARK_YAML = "# generated by mlgrade"
REVIEWS_SUFFIX = ".reviews.jsonl"  # beside a results file: `mlgrade review` appends its decisions there
XLSX_CREATOR = "mlgrade"
_HEAD_BYTES = 1 << 16


def result_shape_problem(rec: Any) -> str | None:
    """Why a parsed line is not shaped like a result line (an object with a known outcome, a text
    id and a question_id), or None. This is all that telling a results file apart needs;
    `batch.lines.check_record` starts here and then checks every field's type."""
    if not isinstance(rec, dict):
        return f"not a JSON object ({type(rec).__name__})"
    if "outcome" not in rec:
        return "not a result line (no outcome)"
    if rec["outcome"] not in RESULT_OUTCOMES:
        return f"outcome {str(rec['outcome'])[:40]!r} is not one of {', '.join(RESULT_OUTCOMES)}"
    if not isinstance(rec.get("id"), str):
        return "id is missing or not text"
    if "question_id" not in rec:
        return "question_id is missing or not text"
    return None


def read_result_line(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None) for a line shaped like a result line (see `result_shape_problem`), else (None, reason)."""
    import json

    try:
        rec = json.loads(line)
    except (ValueError, RecursionError):
        return None, "not valid JSON"
    why = result_shape_problem(rec)
    return (rec, None) if why is None else (None, why)


def parse_result_line(line: bytes) -> dict[str, Any] | None:
    """The result in one line of a results file written by `mlgrade batch`, or None."""
    return read_result_line(line)[0]


def looks_like_results(head: bytes) -> bool:
    """Whether the start of a file is the start of a `batch` results file."""
    head = head.lstrip(b" \t\r\n")
    if not head.startswith(RESULT_LINE_START):
        return False
    end = head.find(b"\n")
    return end < 0 or parse_result_line(head[: end + 1]) is not None


def _head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(_HEAD_BYTES)


def _xlsx_creator(path: Path) -> str | None:
    import re
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            core = zf.read("docProps/core.xml").decode("utf-8", "replace")
    except (OSError, KeyError, zipfile.BadZipFile, ValueError):
        return None
    m = re.search(r"<dc:creator>([^<]*)</dc:creator>", core)
    return m.group(1) if m else None


def written_by_mlgrade(path: Path, head: bytes, ours: Any = None) -> bool:
    """Whether an existing file carries one of mlgrade's marks (Markdown/YAML first-line comment,
    HTML generator meta, XLSX creator), or passes the writer's own test `ours(head)` (a CSV's
    exact header line, a predictions file's first keys)."""
    text = head.decode("utf-8-sig", "replace").lstrip()
    if text.startswith((MARK_MD, MARK_YAML)) or MARK_HTML in text[:4096]:
        return True
    if head.startswith(b"PK") and _xlsx_creator(path) == XLSX_CREATOR:
        return True
    return bool(ours is not None and ours(head))


def first_line_is(*lines: str) -> Any:
    """A test for `write_output(ours=…)`: the file's first line is exactly one of `lines`."""
    wanted = {ln.rstrip("\r\n") for ln in lines}

    def test(head: bytes) -> bool:
        first = head.decode("utf-8-sig", "replace").split("\n", 1)[0].rstrip("\r")
        return first in wanted

    return test


def refuse_special(path: Path, expected: str) -> None:
    """An input that is a FIFO, device or socket is refused on its stat alone, never opened (a
    FIFO would block the command); anything else is left to the caller's opener."""
    import stat

    try:
        st = path.stat()
    except OSError:
        return
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise UsageError(f"{path}: not a regular file (a device, FIFO or socket), expected {expected}")


def stat_output(path: Path, *, option: str = "--out", hint: str = "give a file name",
                dir_hint: str | None = None) -> Any:
    """`os.stat` of a path the user named for output, or None when it does not exist yet. Raises
    UsageError (one line ending in `hint`, or `dir_hint` for a folder) for a path that cannot be
    looked at, a folder, or a device, FIFO or socket: these are refused on their stat alone,
    never opened, so a FIFO cannot block the command."""
    import os
    import stat

    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot use it ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{option} {path} is a directory: {dir_hint or hint}")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{option} {path} is not a regular file (a device, FIFO or socket): {hint}")
    return st


def check_output(path: Path | str, *, inputs: Any = (), ours: Any = None, option: str = "--out") -> Path:
    """Raise UsageError (one line naming the file) unless `path` can be written: not a folder,
    device or missing folder; not one of `inputs`; not a results file; and, when it exists,
    written by mlgrade (see `written_by_mlgrade`)."""
    import os

    path = Path(path)
    if path.name.endswith(REVIEWS_SUFFIX):
        raise UsageError(f"{option} {path}: names ending in {REVIEWS_SUFFIX} are kept for the decisions "
                         "`mlgrade review` writes; choose another file")
    st = stat_output(path, option=option)
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"{option} {path}: the folder {folder} does not exist")
    if st is None:
        return path
    for inp in inputs:
        if inp is None or str(inp) == STDIN:
            continue
        try:
            same = os.path.samefile(path, inp)
        except OSError:
            same = False
        if same:
            raise UsageError(f"{option} {path} is one of this command's inputs; refusing to overwrite it: "
                             "choose another file")
    try:
        head = _head(path)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot read it ({exc.strerror})") from None
    if looks_like_results(head):
        raise UsageError(f"{option} {path} is an mlgrade results file; refusing to overwrite it: choose another file")
    if head.strip() and not written_by_mlgrade(path, head, ours):
        raise UsageError(f"{option} {path} exists and was not written by mlgrade; refusing to overwrite it: "
                         "choose another file or remove it first")
    return path


def write_output(path: Path | str, content: Any, *, inputs: Any = (), ours: Any = None,
                 option: str = "--out") -> Path:
    """Write a file the user named, safely (see `check_output`). `content` is a str, an iterable
    of str chunks, or a callable `save(tmp_path)` (e.g. a workbook's save). The text goes to a
    temporary file in the same folder, synced, then renamed over `path`: a failure (no space, a
    read-only place) raises UsageError and leaves any old file as it was."""
    import os
    import tempfile

    path = check_output(path, inputs=inputs, ours=ours, option=option)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write there ({exc.strerror})") from None
    tmp = Path(tmp_name)
    try:
        try:
            if callable(content):
                os.close(fd)
                content(tmp)
            else:
                with open(fd, "w", encoding="utf-8", newline="") as fh:
                    for chunk in ([content] if isinstance(content, str) else content):
                        fh.write(chunk)
                    fh.flush()
                    os.fsync(fh.fileno())
            os.chmod(tmp, 0o644 & ~_umask())
            os.replace(tmp, path)
        except OSError as exc:
            import errno

            why = "no space left on the device" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else exc.strerror
            raise UsageError(f"{option} {path}: cannot write it ({why}); nothing was changed") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- candidate text on screen
# Candidate text (answers, quotes, names, ids, code values) and anything echoing it must not reach a
# terminal raw: an ESC sequence can wipe or fake the screen, a bidi override can reorder what is
# shown. Every such string goes through `safe_text` before it is printed; JSONL keeps it raw.

_UNSAFE_RE = None


def safe_text(text: Any) -> str:
    """`text` with C0/C1 control characters (except newline and tab) and bidi controls shown as
    visible escapes (`\\x1b`, `\\u202e`); a CRLF becomes a newline."""
    import re

    global _UNSAFE_RE
    s = "" if text is None else str(text)
    if _UNSAFE_RE is None:
        _UNSAFE_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
    s = s.replace("\r\n", "\n")
    return _UNSAFE_RE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", s)


def md_text(text: Any) -> str:
    """Candidate text for a Markdown report: `safe_text`, with raw HTML (`<`, `>`, `&`) escaped and
    square brackets backslash-escaped, so a viewer never runs or renders a candidate's markup, nor
    makes a link or an image of it (`[click](javascript:…)`, `![x](http://tracker…)`)."""
    raw = "" if text is None else str(text).replace("\\", "\\\\")  # first: `\[` must not unescape a bracket
    return (safe_text(raw).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("[", "\\[").replace("]", "\\]"))


def counted(n: int, noun: str, plural: str = "") -> str:
    """`1 answer`, `2 answers`, `1,000 grades` (a count with its noun agreeing)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"

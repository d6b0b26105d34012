"""A folder of answer files, one answer per file named after its question (q07-alice.md)."""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from .items import BatchItem, item_from_row, stable_id
from .sheets import MAX_ROW_CHARS
from ..rubrics import RubricBank, normalise_id

ANSWER_FILE_SUFFIXES = (".md", ".txt")
# q07-alice.md, Q7_bob.txt, q07.md: the question id, then an optional separator and candidate name
_ANSWER_FILE_NAME = re.compile(r"^(q?\d{1,3})(?:[-_. ](.*))?$", re.IGNORECASE)


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

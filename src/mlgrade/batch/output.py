"""The batch output file: append-only JSON Lines that doubles as the resume journal.

Each finished result is written as one complete line and flushed, so after a crash (even
`kill -9`) the file holds whole lines plus at most one partial last line, which `recover()`
detects and cuts off. Rerunning then skips every id already present.

To stay memory-flat on huge files, recovery keeps only 64-bit hashes of the ids it has seen.

The file is only ever written by mlgrade: `check_out` refuses a directory, a device or FIFO, a
read-only place or a full disk before any grading, and `recover` refuses an existing file that
is not an mlgrade results file (its lines are not result lines) so nobody's answers or notes
are overwritten. While a run uses the file it holds an exclusive lock (`flock` on a hidden
`.<name>.lock` next to it, holding the pid), so a second run, or a --retry-errors rewrite,
cannot interleave with it, whichever name (symlink, hard link) it comes through. A write that fails mid-run (ENOSPC) stops the run: every line
already written stays, and rerunning resumes.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MlgradeError, UsageError
from ..textfiles import RESULT_LINE_START, looks_like_results, stat_output
from .lines import OUTCOMES, Problems, answer_digest, id_key, parse_line, superseded
from .lock import ResultsLock

__all__ = ["OUTCOMES", "FINAL_OUTCOMES", "Recovery", "ResultsLock", "OutputWriter", "answer_digest", "check_out",
           "check_results_path", "id_key", "open_results", "recover", "result_record", "sniff"]

FINAL_OUTCOMES = ("graded", "skipped")  # grader_error is final too, unless --retry-errors
MIN_FREE_BYTES = 1 << 20  # refuse to start on a disk with less free space than this
SNIFF_BYTES = 1 << 16


# what a rerun knows of an id's last result (the values of Recovery.done)
SKIPPED = -1  # skipped: regraded once the input yields an answer that is not skipped
UNKNOWN = 0  # no answer stored (an older line): kept as it is


def _digest_int(answer_sha: str) -> int:
    try:
        return int(answer_sha, 16) or 1
    except ValueError:
        return UNKNOWN


@dataclass
class Recovery:
    # id hash -> what its last result was graded on: an int form of the answer's hash, SKIPPED or UNKNOWN
    done: dict[int, int] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)  # of the lines kept
    truncated_bytes: int = 0  # a partial last line cut off (a crash mid-write)
    dropped_errors: int = 0  # grader_error lines removed for --retry-errors
    corrupt_lines: int = 0  # complete lines that are not valid result lines (removed by a rewrite)
    dropped_duplicates: int = 0  # older results for an id that appears again later (removed by a rewrite)
    backup: str | None = None  # where the original was kept before a rewrite dropped lines
    stale: set[int] = field(default_factory=set)  # ids whose last result was graded on another rubric version
    problems: Problems | None = None

    @property
    def kept(self) -> int:
        return sum(self.outcomes.values())

    @property
    def dropped(self) -> int:
        return self.corrupt_lines + self.dropped_errors + self.dropped_duplicates


def _parse(line: bytes) -> dict[str, Any] | None:
    """The result in one line written by mlgrade, or None when the line is not one."""
    return parse_line(line)[0]


def _answer_state(data: dict[str, Any]) -> int:
    if data["outcome"] == "skipped":
        return SKIPPED
    if data.get("answer_sha"):
        return _digest_int(data["answer_sha"])
    if isinstance(data.get("answer"), str):
        return _digest_int(answer_digest(data["answer"]))
    return UNKNOWN


def _not_ours(path: Path, why: str) -> UsageError:
    return UsageError(f"{path} exists and is not an mlgrade results file ({why}); refusing to write over it: "
                      "choose another --out")


def check_out(path: Path) -> None:
    """Refuse an --out that cannot work, before any grading: a directory, a device or FIFO
    (never opened), a folder that cannot be created or written, a full disk."""
    report_suffix = {".csv": "csv", ".tsv": "csv", ".xlsx": "gradebook", ".md": "md", ".html": "html",
                     ".htm": "html"}.get(path.suffix.lower())
    if report_suffix:  # results are JSON lines: a .csv of them would open wrongly in a spreadsheet
        raise UsageError(f"--out {path}: batch writes its results as JSON lines; give a .jsonl path, then for a "
                         f"{path.suffix.lower()[1:].upper()} run `mlgrade report RESULTS.jsonl --format {report_suffix} "
                         f"--out {path.name}`")
    st = stat_output(path, hint="give a results file path",
                     dir_hint=f"give a results file path such as {path}/results.jsonl")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {path}: cannot create the folder {folder} ({exc.strerror})") from None
    if not folder.is_dir():
        raise UsageError(f"--out {path}: {folder} is not a folder")
    target = path if st is not None else folder
    if not os.access(target, os.W_OK):
        what = "the file is read-only" if st is not None else f"the folder {folder} is not writable"
        try:  # tell a read-only filesystem apart from permissions
            ro = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
        except OSError:
            ro = False
        raise UsageError(f"--out {path}: cannot write there ({'read-only file system' if ro else what})")
    try:
        vfs = os.statvfs(folder)
    except OSError:
        return
    if vfs.f_flag & os.ST_RDONLY:
        raise UsageError(f"--out {path}: cannot write there (read-only file system)")
    free = vfs.f_bavail * vfs.f_frsize
    if free < MIN_FREE_BYTES:
        raise UsageError(f"--out {path}: no space left on the device ({free:,} bytes free); free some space and rerun")


def sniff(path: Path) -> None:
    """Raise UsageError unless `path` is empty, missing or starts like an mlgrade results file.
    Reads at most SNIFF_BYTES, so a huge or endless file is not read whole."""
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"--out {path}: cannot read it ({exc.strerror})") from None
    if head.strip() and not looks_like_results(head):
        raise _not_ours(path, "its first line is not a result line")


def check_results_path(path: Path) -> None:
    """The up-front checks of an --out file, for a command to run before showing progress:
    usable (see `check_out`) and, when it exists, written by mlgrade (see `sniff`)."""
    check_out(path)
    sniff(path)


def recover(path: Path, *, retry_errors: bool = False, dry_run: bool = False,
            rubric_hashes: Mapping[str, str] | None = None) -> Recovery:
    """Read an existing output file: which ids are finished (the last line per id counts, as in
    `report`), and repair it for appending.

    Repairs (skipped when `dry_run`): a partial last line is truncated away; corrupt lines and,
    with `retry_errors`, grader_error lines are removed by rewriting the file through a temporary
    copy and an atomic rename, keeping the last line per id; the original is kept beside it as
    `<name>.bak-<time>` (`Recovery.backup`). `rubric_hashes` (question id -> current rubric hash)
    marks the ids graded on an older rubric (`Recovery.stale`).
    """
    rec = Recovery(problems=Problems(path))
    if not path.exists():
        return rec
    sniff(path)
    rewrite = False
    good_end = 0  # byte offset just past the last complete line
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.endswith(b"\n"):
                if not line.lstrip().startswith(RESULT_LINE_START[:2]) and line.strip():
                    raise _not_ours(path, "its last line is not a result line")
                rec.truncated_bytes = len(line)
                break
            good_end += len(line)
            if not line.strip():
                continue
            data, why = parse_line(line)
            if data is None:
                rec.corrupt_lines += 1
                rec.problems.add(lineno, why or "unreadable")  # type: ignore[union-attr]
                rewrite = True
                continue
            key = id_key(data["id"])
            dup = key in rec.done
            if dup:
                rec.dropped_duplicates += 1  # an older line for this id: this one counts, as in report
            if retry_errors and data["outcome"] == "grader_error":
                rec.dropped_errors += 1
                rewrite = True
                rec.done.pop(key, None)
                rec.stale.discard(key)
                continue
            if not dup:
                rec.outcomes[data["outcome"]] += 1
            rec.done[key] = _answer_state(data)
            current = rubric_hashes.get(data["question_id"]) if rubric_hashes else None
            if data["outcome"] == "graded" and current and data.get("rubric_hash") and data["rubric_hash"] != current:
                rec.stale.add(key)
            else:
                rec.stale.discard(key)
    if not rewrite:
        rec.dropped_duplicates = 0  # nothing is removed: report and resume both take the last line
    if rec.corrupt_lines and (not rec.kept or rec.corrupt_lines > max(2, rec.kept // 10)):
        raise _not_ours(path, f"{rec.corrupt_lines:,} of its lines are not result lines")
    if rec.truncated_bytes and not rec.kept and not rec.corrupt_lines:
        with path.open("rb") as fh:
            if not fh.read(len(RESULT_LINE_START)).startswith(RESULT_LINE_START):
                raise _not_ours(path, "it holds no result line")
    if dry_run:
        return rec
    if rec.truncated_bytes:
        os.truncate(path, good_end)
    if rewrite:
        rec.backup = str(_rewrite_without(path, retry_errors=retry_errors))
    return rec


def _backup_path(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.bak-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.bak-{stamp}-{n}")
    return target


def _rewrite_without(path: Path, *, retry_errors: bool) -> Path:
    """Rewrite `path` without corrupt lines, older duplicates and (with `retry_errors`) grader_error
    lines; the original stays as a backup (a hard link to it when the file system allows, so it
    costs no copy). Returns the backup's path."""
    dups, _ = superseded(path)
    tmp = path.with_name(path.name + ".rewrite.tmp")
    with path.open("rb") as src, tmp.open("wb") as dst:
        offset = 0
        for line in src:
            start, offset = offset, offset + len(line)
            data = _parse(line) if line.strip() else None
            if data is None or (retry_errors and data["outcome"] == "grader_error"):
                continue
            last = dups.get(id_key(data["id"])) if dups else None
            if last is not None and last != start:
                continue  # an older result for an id that appears again later: the last one counts
            dst.write(line)
        dst.flush()
        os.fsync(dst.fileno())
    backup = _backup_path(path)
    try:
        os.link(path, backup)
    except OSError:
        import shutil

        shutil.copy2(path, backup)
    os.replace(tmp, path)
    return backup


class OutputWriter:
    """Appends one result per line, each in one write() to the file: a crash loses at most the
    line being written. A failed write (disk full…) raises a one-line MlgradeError, and every
    later write raises it again without touching the file, so the run stops cleanly."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UsageError(f"--out {path}: cannot open it for writing ({exc.strerror})") from None
        self.lines = 0
        self.failed: MlgradeError | None = None

    def write(self, record: dict[str, Any]) -> None:
        if self.failed is not None:
            raise self.failed
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (undecodable input) gets escaped, not a crash
            data = (json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)  # type: ignore[arg-type]
                view = view[written:]
        except OSError as exc:
            self.failed = self._failure(exc)
            raise self.failed from None
        self.lines += 1

    def _failure(self, exc: OSError) -> MlgradeError:
        why = "no space left on the device" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else exc.strerror
        return MlgradeError(f"cannot write to {self.path} ({why}): stopped; the {self.lines:,} result(s) written "
                            "by this run are kept: free some space and rerun the same command to resume")

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError:
                pass  # the failure was reported by write(); closing must not raise a second one
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutputWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def open_results(path: Path, *, retry_errors: bool = False, dry_run: bool = False,
                 rubric_hashes: Mapping[str, str] | None = None) -> Iterator[tuple[Recovery, OutputWriter | None]]:
    """Check `path`, lock it, recover it (repairs, --retry-errors rewrite) and open it for
    appending; the lock is held until the block ends. With `dry_run` nothing is locked or
    written, but a file mlgrade did not write is still refused."""
    if dry_run:
        if path.exists():
            check_out(path)
        yield recover(path, retry_errors=retry_errors, dry_run=True, rubric_hashes=rubric_hashes), None
        return
    check_out(path)
    with ResultsLock(path) as lock:
        path = lock.real  # a symlinked --out: the file it names is rewritten, never the link replaced by a copy
        rec = recover(path, retry_errors=retry_errors, rubric_hashes=rubric_hashes)
        writer = OutputWriter(path)
        if rec.backup:
            lock.relock()
        try:
            yield rec, writer
        finally:
            writer.close()


def result_record(item_id: str, grade: dict[str, Any], *, candidate: str | None, source: str,
                  cached: bool = False, answer: str | None = None) -> dict[str, Any]:
    """One output line: the `grade --json` contract plus the input's id, candidate and source, and
    the answer that was graded (so `mlgrade review` can show it with its evidence highlighted)."""
    record: dict[str, Any] = {"id": item_id, "candidate": candidate, "source": source}
    record.update(grade)
    if cached:
        record["cached"] = True
    if answer is not None:
        record["answer_sha"] = answer_digest(answer)  # a rerun regrades the id when its answer changes
        if grade.get("outcome") != "skipped":  # a skipped answer is empty or oversize
            record["answer"] = answer
    return record

"""The exclusive lock a run holds on a results file (and `mlgrade review` on its decisions file),
taken on the file itself whatever name reaches it. See `ResultsLock`."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UsageError


class ResultsLock:
    """An exclusive lock on a results file for one run, taken on the file itself, whatever name
    reaches it: `flock` on a hidden sidecar beside the file's resolved path (a symlink leads to the
    target's sidecar), and on the file's inode (a hard link is the same inode). The sidecar is what
    survives the atomic rename of --retry-errors; `relock` adds the new inode after it. The sidecar
    holds the pid of the run, named when a second run is refused, and is removed on release (a run
    that finds its locked sidecar no longer at that path takes the new one instead)."""

    def __init__(self, path: Path, *, hint: str = "wait for it to finish or choose another --out"):
        self.path, self.hint = path, hint
        self.real = Path(os.path.realpath(path))
        self.lock_path = self.real.with_name(f".{self.real.name}.lock")
        self._fd: int | None = None
        self._inodes: list[int] = []

    def _refused(self, holder: str) -> UsageError:
        return UsageError(f"{self.path} is in use by another mlgrade run ({holder}); {self.hint}")

    def acquire(self) -> ResultsLock:
        try:
            import fcntl
        except ImportError:  # not a POSIX system: no advisory locks to take
            return self
        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise UsageError(f"--out {self.path}: cannot create its lock file {self.lock_path} "
                                 f"({exc.strerror})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise self._refused(f"pid {holder}") from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.lock_path))
            except OSError:
                same = False
            if same:
                break
            os.close(fd)  # the run before us removed it as we opened it: take the one there now
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        try:
            self.relock()
        except UsageError:
            self.release()
            raise
        return self

    def relock(self) -> None:
        """Lock the results file's current inode too (a hard link to it, or another name, then finds it
        taken): at the start, and again after a rewrite replaced the file."""
        import fcntl

        try:
            fd = os.open(self.real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError:
            return  # not there yet (it is created by this run) or not a plain file (check_out refuses it)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise self._refused("through another name for the same file") from None
        self._inodes.append(fd)

    def release(self) -> None:
        for fd in self._inodes:
            os.close(fd)
        self._inodes = []
        if self._fd is not None:
            try:
                os.unlink(self.lock_path)  # while still holding it: see acquire
            except OSError:
                pass
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> ResultsLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

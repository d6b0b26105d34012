"""The wasm sandbox's cache: the compiled interpreter (native code, loaded as is) and the unpacked
standard library, both verified before use.

Loading a damaged or foreign `.cwasm` fails inside the sandbox host, or worse runs wrong native
code, and used to be charged to the candidate. So a digest of each is recorded when mlgrade
writes it and checked before it is used: a mismatch (truncated, edited, written by another build)
means the file is rebuilt, never trusted."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from functools import lru_cache
from pathlib import Path

COMPLETE = ".complete"  # in the unpacked standard library: written last, holds the tree's digest


def cache_dir() -> Path:
    """Where the compiled module lives: MLGRADE_CACHE_DIR, else the user cache directory. Not
    MLGRADE_HOME: tests and users point that at fresh directories, and the compile costs seconds."""
    env = os.environ.get("MLGRADE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mlgrade", appauthor=False))


@lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_hash(path: Path) -> str:
    """SHA-256 of a file, computed once per process for each (size, mtime) it has."""
    st = path.stat()
    return _sha256(str(path), st.st_size, st.st_mtime_ns)


def read_meta(meta_path: Path) -> dict:
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return meta if isinstance(meta, dict) else {}


def write_meta(meta_path: Path, **fields: object) -> None:
    tmp = meta_path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**fields, "at": time.time()}), encoding="utf-8")
    os.replace(tmp, meta_path)


def module_problem(module_path: Path, meta_path: Path) -> str | None:
    """None when the compiled module is the one mlgrade wrote (its SHA-256 is the one recorded
    beside it); else what is wrong with it."""
    if not module_path.is_file():
        return "not compiled yet"
    recorded = read_meta(meta_path).get("sha256")
    if not isinstance(recorded, str):
        return "no digest was recorded when it was written (an older mlgrade, or the record is damaged)"
    try:
        if file_hash(module_path) != recorded:
            return "it does not match the digest recorded when it was written (damaged or replaced)"
    except OSError as exc:
        return f"cannot read it ({exc.strerror})"
    return None


def discard(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


# --------------------------------------------------------------------------- the unpacked standard library


def _tree_digest(root: Path) -> str:
    """SHA-256 over every file's relative path and content, in a fixed order (COMPLETE excluded)."""
    h = hashlib.sha256()
    stack = [root]
    files: list[Path] = []
    while stack:  # no recursion: the tree is ours, but it is on disk where anything can happen to it
        directory = stack.pop()
        with os.scandir(directory) as listing:
            for entry in listing:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif not (directory == root and entry.name == COMPLETE):
                    files.append(Path(entry.path))
    for path in sorted(files):
        h.update(str(path.relative_to(root)).encode("utf-8", "surrogateescape") + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())  # not file_hash: its cache is for the few big files
    return h.hexdigest()


@lru_cache(maxsize=4)
def _stdlib_intact(root: str, complete_mtime_ns: int) -> bool:
    try:
        return (Path(root) / COMPLETE).read_text(encoding="utf-8").strip() == _tree_digest(Path(root))
    except (OSError, UnicodeDecodeError, ValueError):
        return False


def stdlib_intact(root: Path) -> bool:
    """The unpacked standard library is whole and unchanged since it was unpacked (checked once
    per process)."""
    try:
        mtime = (root / COMPLETE).stat().st_mtime_ns
    except OSError:
        return False
    return _stdlib_intact(str(root), mtime)


def unpack_stdlib(zip_path: Path, target: Path) -> None:
    """Unpack the (hash-pinned) standard library zip beside the module, in a temporary folder
    renamed into place; a damaged unpacked copy is moved aside and unpacked again."""
    import zipfile

    if stdlib_intact(target):
        return
    if target.exists():  # damaged: out of the way first (a rename, so a run using it is not disturbed)
        try:
            os.rename(target, Path(tempfile.mkdtemp(prefix=".stdlib-old-", dir=target.parent)) / "old")
        except OSError:
            return
    tmp = Path(tempfile.mkdtemp(prefix=".stdlib-", dir=target.parent))
    try:
        with zipfile.ZipFile(zip_path) as z:
            z.extractall(tmp / "local/lib/python3.11")
        (tmp / COMPLETE).write_text(_tree_digest(tmp), encoding="utf-8")
        try:
            os.rename(tmp, target)
        except OSError:  # another process got there first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for old in target.parent.glob(".stdlib-old-*"):
            shutil.rmtree(old, ignore_errors=True)

"""Read a user's text file (or standard input) with one clear error line instead of a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import UsageError

STDIN = "-"


def read_text(path: Path | str) -> str:
    """A UTF-8 text file (a byte-order mark is tolerated), or standard input for `-`.
    Missing files, folders, unreadable files and non-UTF-8 bytes raise UsageError naming the file."""
    if str(path) == STDIN:
        data, where = sys.stdin.buffer.read(), "standard input"
    else:
        path = Path(path)
        try:
            data, where = path.read_bytes(), str(path)
        except FileNotFoundError:
            raise UsageError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise UsageError(f"{path}: is a directory, not a file") from None
        except OSError as exc:
            raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where} is not valid UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                         "save it as UTF-8 and try again") from None

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


def load_yaml(text: str) -> Any:
    """One YAML document, safely: no Python objects and no aliases (a yaml.YAMLError naming the
    line is raised for the first alias). Text without `*` cannot hold an alias and takes the fast C loader."""
    import yaml

    if "*" not in text:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    loader = no_alias_loader(text)
    try:
        node = loader.get_single_node()
        if loader.alias_mark is not None:
            raise alias_error(loader.alias_mark)
        return loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()

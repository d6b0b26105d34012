"""The per-row predictions file of `mlgrade eval --out`, for CSV datasets and expert sets alike:
CSV when the name ends in .csv, else JSON lines. Each kind is recognised by its exact CSV header
or by the first key of its JSON lines, so a rerun replaces its own file and nothing else."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any


def is_rows_file(head: bytes, fields: Sequence[str], first_key: str) -> bool:
    """Whether a file's start is one `write_rows` wrote with these `fields` and `first_key`."""
    from ..textfiles import first_line_is

    return head.startswith(b'{"' + first_key.encode() + b'":') or first_line_is(",".join(fields))(head)


def write_rows(path: str | Path, fields: Sequence[str], rows: Iterable[dict[str, Any]], first_key: str, *,
               inputs: Any = ()) -> Path:
    """Write `rows` (each a dict whose first key is `first_key`): CSV with the columns `fields`
    (other keys left out, a list written as its items joined by spaces) when the name ends in
    .csv, else one JSON object per line. An existing file is replaced only when mlgrade wrote it
    (see textfiles.write_output)."""
    import json

    from ..textfiles import write_output

    path = Path(path)
    ours: Callable[[bytes], bool] = lambda head: is_rows_file(head, fields, first_key)  # noqa: E731
    if path.suffix.lower() == ".csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: " ".join(v) if isinstance(v, list) else v for k, v in row.items()})
        return write_output(path, buf.getvalue(), inputs=inputs, ours=ours)
    return write_output(path, (json.dumps(row, ensure_ascii=False) + "\n" for row in rows), inputs=inputs, ours=ours)

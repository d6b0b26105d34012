"""Reading users' text files: one clear line for every way it can go wrong."""

from __future__ import annotations

import pytest

from mlgrade.errors import UsageError
from mlgrade.textfiles import read_text


def test_reads_utf8_and_drops_a_bom(tmp_path):
    p = tmp_path / "a.md"
    p.write_bytes("\ufeffcafé answer".encode("utf-8"))
    assert read_text(p) == "café answer"


@pytest.mark.parametrize("make,needle", [
    (lambda d: d / "missing.txt", "no such file"),
    (lambda d: d, "is a directory"),
    (lambda d: (d / "bad.txt").write_bytes(b"ok \xff\xfe") and d / "bad.txt", "not valid UTF-8 text (byte 0xff at offset 3)"),
])
def test_problems_are_one_line_usage_errors(tmp_path, make, needle):
    with pytest.raises(UsageError) as info:
        read_text(make(tmp_path))
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_derive_reports_a_non_utf8_reference_file(cli, tmp_path):
    bad = tmp_path / "ref.txt"
    bad.write_bytes(b"\xff\xfe")
    result = cli(["rubrics", "derive", "-q", "What is dropout?", "--answer-file", bad])
    assert result.exit_code == 2 and "not valid UTF-8" in result.stderr

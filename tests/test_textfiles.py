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


LIMITED = ("import resource,sys;resource.setrlimit(resource.RLIMIT_AS,(1536*2**20,1536*2**20));"
           "from mlgrade.cli import main;sys.argv=['mlgrade']+sys.argv[1:];main()")


def test_derive_answer_file_dev_zero_reads_a_bounded_amount_and_refuses():
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", LIMITED, "rubrics", "derive", "-q", "What is dropout?",
                          "--answer-file", "/dev/zero", "--grader", "offline"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stderr[-500:]
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: /dev/zero") and "over the limit" in res.stderr


@pytest.mark.parametrize("make,needle", [
    (lambda d: d / "missing.txt", "no such file"),
    (lambda d: d, "is a directory"),
    (lambda d: (d / "bad.txt").write_bytes(b"ok \xff") and d / "bad.txt", "not valid UTF-8"),
    (lambda d: (d / "long.txt").write_text("word " * 5_000) and d / "long.txt", "over the limit of 20,000"),
])
def test_derive_answer_file_problems_are_one_line(cli, tmp_path, make, needle):
    result = cli(["rubrics", "derive", "-q", "What is dropout?", "--answer-file", make(tmp_path), "--grader", "offline"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and needle in result.stderr


def test_derive_reference_text_over_the_limit_is_refused(cli, monkeypatch):
    monkeypatch.setenv("MLGRADE_MAX_ANSWER_CHARS", "100")
    ok = cli(["rubrics", "derive", "-q", "What is dropout?", "-r", "Dropout zeroes units. " * 4, "--grader", "offline"])
    assert ok.exit_code == 0, ok.stderr
    result = cli(["rubrics", "derive", "-q", "What is dropout?", "-r", "x" * 101, "--grader", "offline"])
    assert result.exit_code == 2 and "101 characters, over the limit of 100" in result.stderr

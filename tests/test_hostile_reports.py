"""Issue 27 M6 and low findings: a candidate's terminal escape codes never reach stdout raw from
`report --format gradebook|csv`; a report never takes a reviews file's reserved name; a
candidate's Markdown link or image syntax stays inert text in a Markdown report."""

from __future__ import annotations

import json

import pytest

from test_reviews import _rec  # noqa: F401  (the results-line shape)

EVIL = "\x1b]0;pwned\x07\x1b[2Jevil@x"


@pytest.fixture
def results(tmp_path):
    rec = _rec("r1", candidate=EVIL)
    rec["answer"] = "x](http://evil.example/p.png) [click](javascript:alert(1)) \\[two\\](javascript:x)"
    rec["judgments"][0]["evidence"] = rec["answer"]
    p = tmp_path / "hf.jsonl"
    p.write_text(json.dumps(rec) + "\n")
    return p


@pytest.mark.parametrize("fmt", ["gradebook", "csv", "md"])
def test_no_escape_code_reaches_stdout(cli, results, fmt):
    res = cli(["report", results, "--format", fmt])
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.stdout and "\x07" not in res.stdout
    assert "\\x1b]0;pwned\\x07" in res.stdout.replace("\\]", "]")


def test_the_out_file_keeps_the_name_as_written(cli, results, tmp_path):
    res = cli(["report", results, "--format", "csv", "--out", tmp_path / "s.csv"])
    assert res.exit_code == 0, res.output
    assert EVIL in (tmp_path / "s.csv").read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", ["md", "html", "csv"])
def test_a_report_never_takes_the_reviews_files_name(cli, results, tmp_path, fmt):
    target = tmp_path / "hf.reviews.jsonl"
    res = cli(["report", results, "--format", fmt, "--out", target])
    assert res.exit_code == 2 and "reviews.jsonl" in res.stderr, res.output
    assert not target.exists()


def test_markdown_links_and_images_from_an_answer_are_inert(cli, results, tmp_path):
    import re

    res = cli(["report", results, "--format", "md"])
    assert res.exit_code == 0, res.output
    # a Markdown link or image needs an unescaped `]` followed by `(`: none may come from the answer
    assert not re.search(r"(?<!\\)\]\((javascript|http)", res.stdout), res.stdout
    assert "\\[click\\](javascript:alert(1))" in res.stdout

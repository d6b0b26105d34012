"""Issue 27 M1, M2 and issue 26: the results file is locked as a file, whatever name reaches it
(a symlink or a hard link to a file in use is refused), --retry-errors through a symlinked --out
rewrites the file the link names and keeps the link, and no lock file is left behind."""

from __future__ import annotations

import json
import os

import pytest

from batch_helpers import SlowGrader, answers, read_out, write_jsonl
from mlgrade.batch.engine import grade_many
from mlgrade.batch.output import ResultsLock
from mlgrade.errors import UsageError


@pytest.fixture
def results(tmp_path, bank):
    out = tmp_path / "real.jsonl"
    grade_many([write_jsonl(tmp_path / "one.jsonl", answers(1))], out, grader=SlowGrader(), bank=bank)
    return out


@pytest.mark.parametrize("alias", ["symlink", "hardlink"])
def test_a_second_run_through_another_name_is_refused(tmp_path, results, alias):
    other = tmp_path / "link.jsonl"
    (other.symlink_to if alias == "symlink" else other.hardlink_to)(results.name if alias == "symlink" else results)
    with ResultsLock(results):
        with pytest.raises(UsageError, match="in use by another mlgrade run"):
            ResultsLock(other).acquire()
    with ResultsLock(other):  # and the other way round
        with pytest.raises(UsageError, match="in use by another mlgrade run"):
            ResultsLock(results).acquire()


def test_a_batch_through_a_symlink_while_one_runs_is_refused(tmp_path, results, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(4))
    (tmp_path / "link.jsonl").symlink_to("real.jsonl")
    with ResultsLock(results):
        grader = SlowGrader()
        with pytest.raises(UsageError, match="in use"):
            grade_many([inp], tmp_path / "link.jsonl", grader=grader, bank=bank)
    assert grader.calls == []


def test_retry_errors_through_a_symlink_rewrites_the_target_and_keeps_the_link(tmp_path, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(5))
    real, link = tmp_path / "e.jsonl", tmp_path / "e_link.jsonl"
    grade_many([inp], real, grader=SlowGrader(fail_answers={r["answer"] for r in answers(5)}), bank=bank,
               use_cache=False)
    assert {r["outcome"] for r in read_out(real)} == {"grader_error"}
    link.symlink_to("e.jsonl")
    summary = grade_many([inp], link, grader=SlowGrader(), bank=bank, use_cache=False, retry_errors=True)
    assert link.is_symlink() and os.readlink(link) == "e.jsonl"
    assert [r["outcome"] for r in read_out(real)] == ["graded"] * 5
    backup = tmp_path / os.path.basename(summary.recovery["backup"])
    assert backup.is_file() and not backup.is_symlink()
    assert {json.loads(x)["outcome"] for x in backup.read_text().splitlines()} == {"grader_error"}


def test_no_lock_file_is_left_behind(tmp_path, cli, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(2))
    grade_many([inp], tmp_path / "out.jsonl", grader=SlowGrader(), bank=bank)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".lock")] == []
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "question_id": "q99", "answer": "y"}\n')
    result = cli(["batch", tmp_path / "missing.jsonl", "--out", tmp_path / "o2.jsonl", "--grader", "offline"])
    assert result.exit_code == 2
    result = cli(["batch", tmp_path / "in.jsonl", "--out", tmp_path / "o3.jsonl", "--grader", "offline",
                  "--map", "nothing=q99"])
    assert result.exit_code == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".lock")] == []

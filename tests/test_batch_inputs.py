"""Batch inputs: every format, stable ids, bad rows reported with file:line, streaming."""

from __future__ import annotations

import pytest

from mlgrade.batch.inputs import check_inputs, iter_items
from mlgrade.batch.items import stable_id
from mlgrade.errors import UsageError


def items(paths, bank):
    return list(iter_items(paths, bank))


def test_jsonl_good_and_bad_rows(tmp_path, bank):
    p = tmp_path / "a.jsonl"
    p.write_text('{"question_id": "7", "answer": "walk forward", "candidate": "ann", "id": "x1"}\n'
                 "\n"
                 "{not json\n"
                 '{"question_id": "q99", "answer": "a"}\n'
                 '{"question_id": "q01"}\n'
                 '{"answer": "no question"}\n'
                 '["a", "list"]\n'
                 '{"question_id": "q01", "answer": 42}\n')
    got = items([p], bank)
    assert [i.source for i in got] == [f"{p}:{n}" for n in (1, 3, 4, 5, 6, 7, 8)]
    good = got[0]
    assert good.ok and (good.id, good.question_id, good.candidate) == ("x1", "q07", "ann")
    reasons = [i.skip_reason for i in got[1:]]
    assert reasons[0].startswith("invalid JSON")
    assert reasons[1] == "unknown question id 'q99'"
    assert reasons[2] == "missing answer"
    assert reasons[3] == "missing question_id"
    assert reasons[4].startswith("expected an object")
    assert got[6].skip_reason == "answer must be text, got int"


def test_csv_with_multiline_answer_and_bad_rows(tmp_path, bank):
    p = tmp_path / "a.csv"
    p.write_text('question_id,answer,candidate\nq05,"line one\nline two",bob\nq5,,carl\nq05,a,b,extra\nq31,x,y\n')
    got = items([p], bank)
    assert got[0].ok and got[0].answer == "line one\nline two" and got[0].source == f"{p}:2"
    assert got[1].ok and got[1].answer == "" and got[1].source == f"{p}:4"  # empty: skipped later by check_answer
    assert "cells" in got[2].skip_reason and got[2].source == f"{p}:5"
    assert got[3].skip_reason == "unknown question id 'q31'"


def test_csv_with_an_unterminated_quote_reports_the_row(tmp_path, bank):
    p = tmp_path / "broken.csv"
    p.write_text('question_id,answer\nq05,fine\nq01,"never closed\nq02,swallowed\n')
    got = items([p], bank)
    assert got[0].ok and got[0].answer == "fine"
    assert len(got) == 2 and not got[1].ok
    assert "malformed CSV" in got[1].skip_reason and got[1].source == f"{p}:3"


def test_csv_without_required_columns_is_a_usage_error(tmp_path, bank):
    p = tmp_path / "a.csv"
    p.write_text("question,text\nq1,x\n")
    with pytest.raises(UsageError, match="lacks column"):
        items([p], bank)


def test_yaml_list_streams_items_with_lines(tmp_path, bank):
    p = tmp_path / "a.yaml"
    p.write_text("- question_id: q10\n  answer: |\n    one stage\n    detector\n- {question_id: q10}\n- just text\n")
    got = items([p], bank)
    assert got[0].ok and got[0].answer == "one stage\ndetector\n" and got[0].source == f"{p}:1"
    assert got[1].skip_reason == "missing answer" and got[1].source == f"{p}:5"
    assert got[2].skip_reason.startswith("expected an object")


def test_yaml_that_is_not_a_list(tmp_path, bank):
    p = tmp_path / "a.yaml"
    p.write_text("question_id: q01\nanswer: x\n")
    with pytest.raises(UsageError, match="expected a YAML list"):
        items([p], bank)


def test_answer_folder(tmp_path, bank):
    d = tmp_path / "subs"
    d.mkdir()
    (d / "q07-alice.md").write_text("Rolling origin.")
    (d / "Q7_bob.txt").write_text("Time split.")
    (d / "notes.md").write_text("not an answer")
    (d / "q07-ignored.pdf").write_bytes(b"%PDF")
    (d / "week2").mkdir()
    (d / "week2" / "q07-carl.md").write_text("Forward chaining.")
    (d / ".DS_Store").write_bytes(b"\0")
    got = {i.source.rsplit("/", 1)[-1]: i for i in items([d], bank)}
    assert set(got) == {"q07-alice.md", "Q7_bob.txt", "notes.md", "q07-ignored.pdf", "week2"}
    # what is not read is said, one skipped row each: never silently left out
    assert got["q07-ignored.pdf"].skip_reason == "unsupported file type .pdf: answer files in a folder are .md or .txt"
    assert got["week2"].skip_reason.startswith("a subfolder: folders are not read recursively")
    assert got["q07-alice.md"].candidate == "alice" and got["q07-alice.md"].question_id == "q07"
    assert got["Q7_bob.txt"].candidate == "bob" and got["Q7_bob.txt"].ok
    assert "does not start with a question id" in got["notes.md"].skip_reason


def test_stable_ids_repeat_across_reads_and_differ_by_position(tmp_path, bank):
    p = tmp_path / "a.jsonl"
    p.write_text('{"question_id": "q01", "answer": "same"}\n{"question_id": "q01", "answer": "same"}\n')
    first, second = items([p], bank), items([p], bank)
    assert [i.id for i in first] == [i.id for i in second]
    assert first[0].id != first[1].id and first[0].id.startswith("q01-")
    assert stable_id("q01", "a", "f:1") == stable_id("q01", "a", "f:1") != stable_id("q01", "b", "f:1")


def test_check_inputs_rejects_missing_and_unsupported(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        check_inputs([tmp_path / "nope.jsonl"])
    (tmp_path / "a.json").write_text("[]")
    with pytest.raises(UsageError, match="JSON Lines"):
        check_inputs([tmp_path / "a.json"])
    (tmp_path / "a.pdf").write_text("")
    with pytest.raises(UsageError, match="unsupported"):
        check_inputs([tmp_path / "a.pdf"])


def test_reading_is_lazy(tmp_path, bank):
    p = tmp_path / "big.jsonl"
    with p.open("w") as fh:
        for i in range(50_000):
            fh.write('{"question_id": "q01", "answer": "x%d"}\n' % i)
    it = iter_items([p], bank)
    first = next(it)  # a generator: the first item comes before the file is read to the end
    assert first.answer == "x0"
    assert sum(1 for _ in it) == 49_999

"""Results lines edited by hand or written by another tool: one type check for every reader
(report, gradebook, batch summary, review), rewrites that never lose lines silently, and reruns
that regrade an answer that changed or a row that was skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batch_helpers import SlowGrader, answers, read_out, write_jsonl
from mlgrade.batch.engine import grade_many
from mlgrade.batch.lines import check_record
from mlgrade.batch.aggregate import aggregate_file

BAD_FIELDS = {
    "score": ("abc", "score is not a number"),
    "candidate": ({"name": "x"}, "candidate is not text"),
    "usage": ("x", "usage is not an object"),
    "judgments": ("x", "judgments is not a list"),
    "question_id": (5, "question_id is missing or not text"),
    "review": ([1], "review is not an object"),
}


def _graded(tmp_path: Path, bank, n: int = 6) -> tuple[Path, Path]:
    inp = write_jsonl(tmp_path / "in.jsonl", answers(n))
    out = tmp_path / "out.jsonl"
    grade_many([inp], out, grader=SlowGrader(), bank=bank, use_cache=False)
    return inp, out


def _damage(out: Path, index: int, **fields) -> str:
    lines = out.read_text().splitlines(keepends=True)
    rec = json.loads(lines[index])
    rec.update(fields)
    lines[index] = json.dumps(rec) + "\n"
    out.write_text("".join(lines))
    return rec["id"]


@pytest.mark.parametrize("name", sorted(BAD_FIELDS))
def test_a_wrongly_typed_line_is_warned_about_and_the_rest_is_reported(tmp_path, cli, bank, name):
    _, out = _graded(tmp_path, bank)
    value, reason = BAD_FIELDS[name]
    _damage(out, 2, **{name: value})
    for fmt in ("md", "html", "csv", "gradebook"):
        res = cli(["report", out, "--format", fmt])
        assert res.exit_code == 0 and "Traceback" not in res.output, (fmt, res.output)
        warnings = [w for w in res.stderr.splitlines() if w.startswith("warning: ")]
        assert len(warnings) == 1 and warnings[0].startswith(f"warning: {out}:3: {reason}"), (fmt, res.stderr)
    agg = aggregate_file(out)
    assert agg.total == 5 and agg.problems.count == 1


@pytest.mark.parametrize("name", sorted(BAD_FIELDS))
def test_batch_rerun_survives_a_wrongly_typed_line_and_regrades_it(tmp_path, cli, bank, name):
    inp, out = _graded(tmp_path, bank)
    value, reason = BAD_FIELDS[name]
    bad_id = _damage(out, 2, **{name: value})
    res = cli(["batch", inp, "--out", out])
    assert res.exit_code in (0, 1) and "Traceback" not in res.output, res.output
    assert f"warning: {out}:3: {reason}" in res.stderr
    assert "dropped 1 line(s) (1 corrupt)" in res.stderr and ".bak-" in res.stderr
    rows = read_out(out)
    assert sorted(r["id"] for r in rows) == sorted(a["id"] for a in answers(6))
    assert [r["id"] for r in rows].count(bad_id) == 1


def test_check_record_accepts_what_mlgrade_writes_and_rejects_wrong_types(tmp_path, bank):
    _, out = _graded(tmp_path, bank, 3)
    for rec in read_out(out):
        assert check_record(rec) is None
        assert check_record({**rec, "cost_usd": "1"}) == "cost_usd is not a number"
        assert check_record({**rec, "judgments": [{"key_point": "k", "status": "maybe"}]})
        assert check_record({**rec, "usage": {"input_tokens": "many"}})
    assert check_record({"hello": "world"}) == "not a result line (no outcome)"
    assert check_record([1]) == "not a JSON object (list)"


def test_recognising_a_results_file_is_looser_than_reading_its_lines():
    """A file whose first line is result-shaped but wrongly typed is still an mlgrade results file
    (so no report is written over it, and batch resumes it, reporting the line as corrupt), while
    the readers leave that line out with the same reason the shape test gives."""
    from mlgrade.batch.lines import parse_line
    from mlgrade.textfiles import looks_like_results, parse_result_line

    typed_wrong = b'{"id":"a","outcome":"graded","question_id":7,"score":"high"}\n'
    assert parse_result_line(typed_wrong) is not None and looks_like_results(typed_wrong)
    assert parse_line(typed_wrong) == (None, "question_id is missing or not text")
    for line, why in [(b'{"id":"a","outcome":"graded"}\n', "question_id is missing or not text"),
                      (b'{"id":1,"outcome":"graded","question_id":"q01"}\n', "id is missing or not text"),
                      (b'{"id":"a","outcome":"done","question_id":"q01"}\n',
                       "outcome 'done' is not one of graded, grader_error, skipped"),
                      (b'{"id":"a",', "not valid JSON")]:
        assert parse_result_line(line) is None and not looks_like_results(line + b"\n")
        assert parse_line(line) == (None, why)


def test_review_leaves_a_wrongly_typed_line_out_with_a_warning(tmp_path, bank):
    from mlgrade.batch.reviews import ReviewSession

    _, out = _graded(tmp_path, bank)
    bad = _damage(out, 1, review=[1])
    odd = _damage(out, 3, review={"needed": True, "reasons": ["no_such_reason"]})  # passes the type check only
    session = ReviewSession(out, bank=bank)
    assert bad not in [e.id for e in session.queue]
    assert session.warnings() == [f"{out}:2: review is not an object (list) (left out of the review)"]
    seen = []
    while not session.done:
        seen.append(session.current().record["id"])
        session.skip()
    assert odd not in seen and len(seen) == 4
    assert any(odd in w for w in session.warnings())


def test_many_corrupt_lines_are_counted_not_listed(tmp_path, cli, bank):
    _, out = _graded(tmp_path, bank, 12)
    for i in range(7):
        _damage(out, i, score="abc")
    res = cli(["report", out])
    assert res.exit_code == 0
    warnings = [w for w in res.stderr.splitlines() if w.startswith("warning: ")]
    assert len(warnings) == 6 and "and 2 more corrupt line(s)" in warnings[-1]


# --------------------------------------------------------------------------- rewrites keep a backup


def test_rerun_rewrite_keeps_a_backup_says_so_and_keeps_the_last_line_per_id(tmp_path, cli, bank):
    inp, out = _graded(tmp_path, bank)
    lines = out.read_text().splitlines(keepends=True)
    later = json.loads(lines[0])
    later["score"] = 3.0 if later["score"] != 3.0 else 4.0
    lines[2] = lines[2][:40] + "\n"  # a damaged line
    text = "".join(lines) + json.dumps(later) + "\n" + '{"hello":"world"}\n'
    out.write_text(text)
    before_report = aggregate_file(out)
    assert before_report.questions[later["question_id"]].score_sum  # the later score counts in report
    res = cli(["batch", inp, "--out", out])
    assert "Traceback" not in res.output
    note = [line for line in res.stderr.splitlines() if line.startswith("rewrote ")]
    assert len(note) == 1 and "dropped 3 line(s) (2 corrupt, 1 superseded)" in note[0], res.stderr
    backups = list(tmp_path.glob("out.jsonl.bak-*"))
    assert len(backups) == 1 and backups[0].read_text() == text and str(backups[0]) in note[0]
    first = next(r for r in read_out(out) if r["id"] == later["id"])
    assert first["score"] == later["score"]  # the last line per id was kept, as report reads it
    assert [r["id"] for r in read_out(out)].count(later["id"]) == 1


def test_retry_errors_rewrite_keeps_a_backup_too(tmp_path, bank):
    inp, out = _graded(tmp_path, bank, 4)
    _damage(out, 1, outcome="grader_error", score=None, band=None, error="boom", review=None)
    summary = grade_many([inp], out, grader=SlowGrader(), bank=bank, use_cache=False, retry_errors=True)
    assert summary.recovery["dropped_errors"] == 1 and summary.recovery["backup"]
    assert Path(summary.recovery["backup"]).exists()
    assert summary.run.graded == 1


# --------------------------------------------------------------------------- reruns regrade what changed


def test_a_skipped_row_is_graded_once_the_input_is_fixed(tmp_path, cli, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "s1", "question_id": "q05", "answer": ""}])
    out = tmp_path / "out.jsonl"
    assert grade_many([inp], out, grader=SlowGrader(), bank=bank).run.skipped == 1
    again = grade_many([inp], out, grader=SlowGrader(), bank=bank)
    assert again.run.done == 0  # still empty: nothing to redo
    write_jsonl(inp, [{"id": "s1", "question_id": "q05", "answer": "Recall is TP over TP plus FN."}])
    res = cli(["batch", inp, "--out", out])
    assert "graded 1 previously skipped answer(s)" in res.stderr, res.output
    assert aggregate_file(out).outcomes == {"graded": 1}


def test_a_row_skipped_for_length_is_graded_once_shortened(tmp_path, bank, monkeypatch):
    monkeypatch.setenv("MLGRADE_MAX_ANSWER_CHARS", "200")
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "l1", "question_id": "q05", "answer": "x " * 300}])
    out = tmp_path / "out.jsonl"
    assert grade_many([inp], out, grader=SlowGrader(), bank=bank).run.skipped == 1
    write_jsonl(inp, [{"id": "l1", "question_id": "q05", "answer": "Recall is TP over TP plus FN."}])
    summary = grade_many([inp], out, grader=SlowGrader(), bank=bank)
    assert summary.regraded_skipped == 1 and aggregate_file(out).outcomes == {"graded": 1}


def test_a_changed_answer_is_regraded_and_the_summary_says_so(tmp_path, cli, bank):
    rows = answers(4)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    grade_many([inp], out, grader=SlowGrader(), bank=bank, use_cache=False)
    rows[1]["answer"] = "A completely different answer about recall."
    write_jsonl(inp, rows)
    grader = SlowGrader()
    summary = grade_many([inp], out, grader=grader, bank=bank, use_cache=False)
    assert summary.regraded_changed == 1 and grader.calls and len(grader.calls) == 1
    last = [r for r in read_out(out) if r["id"] == rows[1]["id"]][-1]
    assert last["answer"] == rows[1]["answer"]
    rows[2]["answer"] = "Also changed."
    write_jsonl(inp, rows)
    res = cli(["batch", inp, "--out", out])
    assert "regraded 1 result(s) because the answer changed" in res.stderr, res.output
    assert grade_many([inp], out, grader=SlowGrader(), bank=bank).run.done == 0  # nothing changed since


def test_results_graded_on_an_older_rubric_are_counted_not_regraded_unless_asked(tmp_path, cli, bank):
    inp, out = _graded(tmp_path, bank, 3)
    for i in range(2):
        _damage(out, i, rubric_hash="0ld")
    res = cli(["batch", inp, "--out", out])
    warning = [w for w in res.stderr.splitlines() if "older version of their rubric" in w]
    assert warning == ["warning: 2 result(s) were graded on an older version of their rubric "
                       "(kept; rerun with --regrade-stale to regrade them)"], res.stderr
    assert len(read_out(out)) == 3
    summary = grade_many([inp], out, grader=SlowGrader(), bank=bank, use_cache=False, regrade_stale=True)
    assert summary.stale_rubric == 2 and summary.regraded_stale == 2 and summary.run.graded == 2
    assert grade_many([inp], out, grader=SlowGrader(), bank=bank).stale_rubric == 0


def test_report_does_not_call_regraded_results_duplicates(tmp_path, cli, bank):
    rows = answers(4)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    grade_many([inp], out, grader=SlowGrader(fail_answers={rows[3]["answer"]}), bank=bank, use_cache=False)
    grade_many([inp], out, grader=SlowGrader(), bank=bank, use_cache=False, retry_errors=True)
    assert len(read_out(out)) == 4  # --retry-errors rewrites the file: no line left behind
    stale = {_damage(out, i, rubric_hash="0ld") for i in range(2)}  # graded on an older rubric
    changed = next(r for r in rows if r["id"] not in stale)
    changed["answer"] = "A changed answer about recall."
    write_jsonl(inp, rows)
    grade_many([inp], out, grader=SlowGrader(), bank=bank, use_cache=False, regrade_stale=True)
    assert len(read_out(out)) == 7  # three regrades appended; their older lines stay as history
    res = cli(["report", out])
    assert res.exit_code == 0 and "duplicate" not in res.stderr, res.stderr
    assert aggregate_file(out).to_dict()["replaced_by_regrades"] == 3
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines + lines[-1:]))  # a real duplicate: the same result twice (files joined)
    res = cli(["report", out])
    assert "warning: 1 duplicate result(s) ignored: the last result per id counts" in res.stderr, res.stderr
    twice = tmp_path / "twice.jsonl"  # the whole file joined to itself: the second copy only repeats
    twice.write_text("".join(lines + lines))
    assert "warning: 7 duplicate result(s) ignored" in cli(["report", twice]).stderr

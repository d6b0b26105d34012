"""Reports over batch results: aggregation, Markdown, self-contained HTML, CSV."""

from __future__ import annotations

import csv
import io
import json

import pytest

from mlgrade.errors import UsageError
from mlgrade.batch.aggregate import aggregate_file
from mlgrade.batch.report import write_report


def _rec(i, cand, q, score=None, band=None, outcome="graded", missing=("kp-b",), error=None):
    judgments = [{"key_point": "kp-a", "status": "covered", "evidence": "quote <b>", "verified": True, "comment": ""}]
    judgments += [{"key_point": k, "status": "missing", "evidence": "", "verified": True, "comment": ""} for k in missing]
    return {"id": f"id{i}", "candidate": cand, "source": f"in.jsonl:{i}", "question_id": q, "outcome": outcome,
            "score": score, "band": band, "judgments": judgments if outcome == "graded" else [], "misconceptions": [],
            "improvements": ["Say more"], "follow_up": "Why?", "error": error,
            "usage": {"input_tokens": 100, "output_tokens": 10, "cached_tokens": 50}, "cost_usd": 0.001}


@pytest.fixture
def results(tmp_path):
    recs = [_rec(1, "ann", "q01", 80.0, "strong"), _rec(2, "ann", "q07", 40.0, "weak"),
            _rec(3, "bob", "q01", 60.0, "adequate", missing=("kp-b", "kp-c")),
            _rec(4, "bob", "q07", outcome="grader_error", error="reply failed validation"),
            _rec(5, None, "q99", outcome="skipped", error="unknown question id 'q99'")]
    p = tmp_path / "results.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs) + '{"id": "partial", "outc')
    return p


def test_aggregate(results):
    agg = aggregate_file(results)
    assert agg.total == 5  # the partial last line is ignored
    assert agg.outcomes == {"graded": 3, "grader_error": 1, "skipped": 1}
    q01 = agg.questions["q01"]
    assert q01.mean == 70.0 and q01.bands == {"strong": 1, "adequate": 1}
    assert q01.most_missed()[0] == ("kp-b", 2)
    assert agg.candidates["bob"].errors == 1 and agg.candidates["ann"].mean == 60.0
    assert agg.input_tokens == 500 and agg.cost_usd == pytest.approx(0.005)


def test_markdown(results):
    md = write_report(results, "md")
    assert "| q01 | 2 | 70 | strong 1 · adequate 1 |" in md
    assert "### ann" in md and "### bob" in md and "reply failed validation" in md
    assert md.index("### ann") < md.index("### bob")


def test_html_is_self_contained_and_escaped(results, tmp_path):
    out = write_report(results, "html", tmp_path / "r.html", title="Cohort <1>")
    page = out.read_text()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<style>" in page and "<script" not in page and "http://" not in page and "https://" not in page
    assert "Cohort &lt;1&gt;" in page and "quote &lt;b&gt;" in page and "quote <b>" not in page
    assert page.count("<details>") == 5


def test_csv_one_row_per_answer(results):
    rows = list(csv.DictReader(io.StringIO(write_report(results, "csv"))))
    assert [r["id"] for r in rows] == ["id1", "id2", "id3", "id4", "id5"]
    assert rows[2]["missed_key_points"] == "kp-b;kp-c" and rows[2]["score"] == "60.0"
    assert rows[3]["outcome"] == "grader_error" and rows[3]["score"] == ""


def test_errors(tmp_path):
    with pytest.raises(UsageError, match="no such results file"):
        write_report(tmp_path / "none.jsonl")
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    with pytest.raises(UsageError, match="no results"):
        write_report(empty)


@pytest.mark.parametrize("extra", [[], ["--format", "gradebook"], ["--json"]])
def test_report_on_an_answers_file_is_one_line_saying_so(cli, tmp_path, extra):
    # issue 26: `report answers.jsonl` printed 4 warnings about "not a result line", then an error
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"question_id": "q07", "answer": f"answer {i}", "candidate": "ann"}) + "\n"
                               for i in range(8)))
    result = cli(["report", answers, *extra])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {answers} is an input file (answers to grade), not a results file: grade it with "
        f"`mlgrade batch {answers} --out results.jsonl`, then report on results.jsonl"]

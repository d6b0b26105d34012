"""Issue 27 M3 and issue 26: a tampered reviews file (a line nested 100,000 deep, an override with
no band, a huge note, a FIFO) never crashes `report`, the gradebook or `eval --reviews`: each bad
line is left out with a warning naming it, like a bad results line."""

from __future__ import annotations

import json
import os

import pytest

from test_reviews import _rec  # noqa: F401  (the results-line shape)

from mlgrade.batch.reviews import load_decisions, reviews_path


@pytest.fixture
def results(tmp_path):
    recs = [_rec("r1", score=50, band="weak"), _rec("r4", score=70, band="adequate", candidate="bob")]
    p = tmp_path / "res.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return p


DEEP = '{"id":"r1","x":' + "[" * 30_000 + "]" * 30_000 + "}\n"  # under the line cap: the parser's depth fails
NO_BAND = '{"id":"r4","decision":"override","score":5}\n'
NEITHER = '{"id":"r1","decision":"override"}\n'


@pytest.mark.parametrize("args", [[], ["--format", "gradebook"], ["--format", "csv"], ["--format", "html"]])
def test_deeply_nested_reviews_line_is_left_out_with_a_warning(cli, results, args):
    reviews_path(results).write_text(DEEP + NEITHER)
    result = cli(["report", results, *args])
    assert result.exit_code == 0, result.output
    assert "nested too deeply" in result.stderr and "res.reviews.jsonl:1" in result.stderr
    assert "res.reviews.jsonl:2" in result.stderr


def test_override_without_a_band_takes_the_band_of_its_score(cli, results):
    reviews_path(results).write_text(NO_BAND)
    assert load_decisions(reviews_path(results))["r4"].band == "poor"
    result = cli(["eval", results, "--reviews", reviews_path(results), "--json"])
    assert result.exit_code == 0, result.output
    book = cli(["report", results, "--format", "gradebook"])
    assert book.exit_code == 0 and "None" not in book.stdout and "5.0,poor" in book.stdout, book.stdout


def test_eval_reviews_with_only_bad_lines_is_one_line(cli, results):
    reviews_path(results).write_text(DEEP + NEITHER)
    result = cli(["eval", results, "--reviews", reviews_path(results)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "nested too deeply" in result.stderr


def test_a_huge_note_is_not_held_in_memory(results):
    with reviews_path(results).open("w") as fh:
        fh.write('{"id":"r1","decision":"override","score":10,"note":"' + "n" * (3 << 20) + '"}\n')
        fh.write('{"id":"r4","decision":"accept","score":70,"band":"adequate"}\n')
    warnings: list[str] = []
    decisions = load_decisions(reviews_path(results), warnings.append)
    assert set(decisions) == {"r4"} and "res.reviews.jsonl:1" in warnings[0] and "longer than" in warnings[0]


def test_a_fifo_as_the_reviews_file_is_refused_not_opened(cli, results, tmp_path):
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    result = cli(["eval", results, "--reviews", fifo])
    assert result.exit_code == 2 and "FIFO" in result.output
    os.mkfifo(reviews_path(results))
    result = cli(["report", results])
    assert result.exit_code == 2 and "FIFO" in result.output


def test_a_second_review_session_on_the_same_decisions_is_refused(results, bank, tmp_path):
    from mlgrade.batch.reviews import ReviewSession
    from mlgrade.errors import UsageError

    first = ReviewSession(results, bank=bank)
    with first.exclusive():
        first.accept()
        second = ReviewSession(results, bank=bank)
        with pytest.raises(UsageError, match="in use by another mlgrade run .*finish that review first"):
            second.exclusive().acquire()
        (tmp_path / "alias.reviews.jsonl").symlink_to(reviews_path(results).name)
        third = ReviewSession(results, reviews=tmp_path / "alias.reviews.jsonl", bank=bank)
        with pytest.raises(UsageError, match="in use"):
            third.exclusive().acquire()
    with ReviewSession(results, bank=bank).exclusive():  # free again once the first ends
        pass
    assert not (tmp_path / ".res.reviews.jsonl.lock").exists()

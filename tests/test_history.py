"""History queries, statistics, retrying grader errors, and the history/stats commands."""

from __future__ import annotations

import json

import pytest

from mlgrade.practice import history as hist
from mlgrade.graders.fake import FakeGrader
from mlgrade.grading import grade as grade_answer


@pytest.fixture
def settings():
    from mlgrade.config import load_settings

    return load_settings(exec_code=False)


def _add(store, bank, settings, qid, n_covered, answer="An answer. With two sentences.", *, fail=None, session="s1"):
    rubric = bank.get(qid)
    grader = FakeGrader(statuses={kp.id: "covered" for kp in rubric.key_points[:n_covered]}, fail_with=fail)
    g = grade_answer(qid, answer, settings=settings, grader=grader, bank=bank)
    return g, store.add_attempt(g.model_dump(mode="json"), answer, session_id=session)


def test_trend_compares_latest_scores_with_earlier_ones():
    assert hist.trend([]) is None and hist.trend([50]) is None
    assert hist.trend([40, 60]) == 20
    assert hist.trend([10, 20, 30, 40, 50]) == pytest.approx(40 - 15)  # last 3 mean 40 vs first 2 mean 15
    assert hist.trend([80, 60]) == -20


def test_recent_get_and_filter(store, bank, settings):
    _add(store, bank, settings, "q05", 1)
    _add(store, bank, settings, "q07", 2)
    _, third = _add(store, bank, settings, "q05", 3)
    assert [a.question_id for a in hist.recent(store)] == ["q05", "q07", "q05"]  # newest first
    assert [a.id for a in hist.recent(store, question_id="q05")] == [third, third - 2]
    assert len(hist.recent(store, limit=1)) == 1
    one = hist.get(store, third)
    assert one.to_grade().score == one.score and one.grade["question_id"] == "q05"
    assert hist.get(store, 999) is None


def test_question_and_section_stats(store, bank, settings):
    scores = [_add(store, bank, settings, "q05", n)[0].score for n in (1, 4, 2)]
    _add(store, bank, settings, "q05", 0, fail="timeout")
    q07 = _add(store, bank, settings, "q07", 3)[0].score
    rows = {r.question_id: r for r in hist.question_stats(store, bank)}
    q05 = rows["q05"]
    assert (q05.attempts, q05.errors) == (3, 1)
    assert q05.best == max(scores) and q05.last == scores[-1]
    assert q05.mean == pytest.approx(round(sum(scores) / 3, 1))
    assert q05.trend == pytest.approx(round((scores[1] + scores[2]) / 2 - scores[0], 1))
    assert rows["q07"].trend is None and rows["q07"].section == bank.get("q07").section
    sections = {s.section: s for s in hist.section_stats(store, bank)}
    tech = sections[bank.get("q05").section]
    assert tech.attempts == 3 + (1 if bank.get("q07").section == tech.section else 0)
    assert tech.best == max(scores + ([q07] if bank.get("q07").section == tech.section else []))
    assert sections["nlp"].practised == 0 and sections["nlp"].mean is None
    assert sum(s.questions for s in sections.values()) == len(bank)


def test_most_missed_counts_missing_as_one_and_partial_as_half(store, bank, settings):
    rubric = bank.get("q05")
    first, second = rubric.key_points[0].id, rubric.key_points[1].id
    for statuses in ({first: "missing", second: "partial"}, {first: "missing", second: "covered"}):
        grader = FakeGrader(statuses=statuses, default_status="covered")
        g = grade_answer("q05", "Some answer.", settings=settings, grader=grader, bank=bank)
        store.add_attempt(g.model_dump(mode="json"), "Some answer.")
    _add(store, bank, settings, "q05", 0, fail="boom")  # errors judge nothing
    missed = hist.missed_key_points(hist.all_attempts(store), bank)
    assert [(m.key_point, m.missed, m.judged) for m in missed] == [(first, 2, 2), (second, 0.5, 2)]
    assert missed[0].point == rubric.key_points[0].point and missed[0].rate == 1.0


def test_pending_errors_dedupe_and_resolve(store, bank, settings):
    _add(store, bank, settings, "q05", 0, answer="A", fail="timeout")
    _add(store, bank, settings, "q05", 0, answer="A", fail="timeout again")  # same answer failed twice
    _add(store, bank, settings, "q07", 0, answer="B", fail="timeout")
    _add(store, bank, settings, "q07", 2, answer="B")  # later graded: resolved
    pending = hist.pending_errors(store)
    assert [(a.question_id, a.answer, a.error) for a in pending] == [("q05", "A", "timeout again")]


def test_retry_errors_stores_new_attempts_and_leaves_old_rows(store, bank, settings):
    _, err_id = _add(store, bank, settings, "q05", 0, answer="Scaling depends on the model.", fail="timeout")
    rubric = bank.get("q05")
    results = hist.retry_errors(store, bank, settings=settings, grader=FakeGrader(
        statuses={kp.id: "covered" for kp in rubric.key_points}))
    [(old, new, new_id)] = results
    assert old.id == err_id and new.ok and new.score == 100
    assert hist.get(store, err_id).outcome == "grader_error"  # history is never rewritten
    assert hist.get(store, new_id).answer == "Scaling depends on the model."
    assert hist.pending_errors(store) == []
    assert hist.retry_errors(store, bank, settings=settings, grader=FakeGrader()) == []


def test_retry_that_fails_again_is_stored_as_an_error(store, bank, settings):
    _add(store, bank, settings, "q05", 0, fail="timeout")
    [(_, new, new_id)] = hist.retry_errors(store, bank, settings=settings, grader=FakeGrader(fail_with="still down"))
    assert new.outcome == "grader_error" and hist.get(store, new_id).score is None
    assert len(hist.pending_errors(store)) == 1


def test_stats_data_shape(store, bank, settings):
    _add(store, bank, settings, "q05", 2)
    _add(store, bank, settings, "q05", 0, fail="x")
    data = hist.stats(store, bank)
    assert (data["attempts"], data["errors"], data["questions_practised"]) == (1, 1, 1)
    assert data["questions_total"] == len(bank)
    [q] = data["questions"]
    assert q["question_id"] == "q05" and q["due"] is False and q["due_at"]
    assert data["most_missed"] and json.dumps(data)


# --------------------------------------------------------------------------- commands


def test_history_and_stats_commands_when_empty(cli):
    assert "No attempts yet" in cli(["history"]).output
    assert json.loads(cli(["history", "--json"]).stdout) == []
    assert "No graded attempts yet" in cli(["stats"]).output
    assert json.loads(cli(["stats", "--json"]).stdout)["attempts"] == 0


def test_history_command_lists_filters_and_shows(cli, store, bank, settings):
    _add(store, bank, settings, "q05", 2, answer="Scaling depends on the model used.")
    _, second = _add(store, bank, settings, "q07", 1, answer="Use a rolling-origin split.")
    out = cli(["history"], env={"COLUMNS": "200"}).output
    assert "q05" in out and "q07" in out and "Use a rolling-origin split" in out
    rows = json.loads(cli(["history", "--question", "7", "--json"]).stdout)
    assert [r["id"] for r in rows] == [second] and rows[0]["grade"]["question_id"] == "q07"
    shown = cli(["history", "show", str(second)])
    assert shown.exit_code == 0 and bank.get("q07").question[:30] in shown.output and "rolling-origin" in shown.output
    assert json.loads(cli(["history", "show", str(second), "--json"]).stdout)["id"] == second
    missing = cli(["history", "show", "999"])
    assert missing.exit_code == 2 and missing.stderr.startswith("error: no attempt #999")


def test_stats_command(cli, store, bank, settings):
    _add(store, bank, settings, "q05", 2)
    _add(store, bank, settings, "q05", 4)
    result = cli(["stats"])
    assert result.exit_code == 0 and "by section" in result.output and "q05" in result.output
    assert "missed most often" in result.output
    data = json.loads(cli(["stats", "--json"]).stdout)
    assert data["questions"][0]["attempts"] == 2 and data["questions"][0]["trend"] is not None


def test_retry_errors_command_regrades_with_the_offline_grader(cli, store, bank, settings, monkeypatch):
    _, err_id = _add(store, bank, settings, "q05", 0, answer="Trees do not need scaling; k-NN does.", fail="timeout")
    monkeypatch.setenv("MLGRADE_GRADER", "offline")
    result = cli(["history", "--retry-errors", "--json"])
    assert result.exit_code == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert row["retried"] == err_id and row["outcome"] == "graded" and row["score"] is not None
    assert hist.get(store, row["attempt"]).grader == "offline"
    assert json.loads(cli(["history", "--retry-errors", "--json"]).stdout) == []  # nothing left to retry


def test_retry_errors_command_with_no_errors(cli):
    result = cli(["history", "--retry-errors"])
    assert result.exit_code == 0 and "No grading errors" in result.output


def test_most_missed_ties_go_to_essential_then_heavier_points(store, bank, settings):
    rubric = bank.get("q05")
    _add(store, bank, settings, "q05", 0)  # every point missed once
    missed = hist.missed_key_points(hist.all_attempts(store), bank, limit=len(rubric.key_points))
    keys = [(not m.essential, -m.weight) for m in missed]
    assert keys == sorted(keys) and missed[0].essential

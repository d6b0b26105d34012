"""Practice sessions through the library with a fake grader: question choice, the SM-2
schedule, storing attempts (errors never as scores), the summary, and the scripted terminal loop."""

from __future__ import annotations

import io
import random
from datetime import datetime, timedelta, timezone

import pytest
from rich.console import Console

from mlgrade.graders.fake import FakeGrader
from mlgrade.practice.history import all_attempts
from mlgrade.practice.schedule import FAIL_INTERVAL_DAYS
from mlgrade.practice.session import (
    PracticeSession,
    SessionOptions,
    next_review,
    quality,
    rank_questions,
    schedule_for,
)

T0 = datetime(2026, 1, 10, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def settings():
    """No code execution: the fake grader's verdicts alone decide the score here."""
    from mlgrade.config import load_settings

    return load_settings(exec_code=False)


def _all_covered(rubric) -> FakeGrader:
    return FakeGrader(statuses={kp.id: "covered" for kp in rubric.key_points})


def _session(store, bank, settings, grader=None, clock=lambda: T0, **options) -> PracticeSession:
    return PracticeSession(store, bank, grader=grader or FakeGrader(), settings=settings,
                           options=SessionOptions(**options), rng=random.Random(7), clock=clock)


def _record(store, bank, settings, qid: str, covered: float, when: datetime | None = None) -> float:
    """Store one graded attempt at `qid` covering roughly the first `covered` fraction of key points."""
    rubric = bank.get(qid)
    n = round(len(rubric.key_points) * covered)
    grader = FakeGrader(statuses={kp.id: "covered" for kp in rubric.key_points[:n]})
    session = _session(store, bank, settings, grader=grader)
    grade, attempt_id = session.grade(rubric, f"My answer to {qid}. It has a first sentence.")
    if when is not None:  # back-date it, as if answered then
        store.db.execute("UPDATE attempts SET created_at = ? WHERE id = ?", (when.isoformat(), attempt_id))
    return grade.score


# --------------------------------------------------------------------------- schedule


def test_quality_maps_score_onto_sm2_scale():
    assert quality(0) == 0 and quality(60) == 3 and quality(100) == 5 and quality(130) == 5


def test_sm2_intervals_grow_on_passes_and_reset_on_a_fail():
    s1 = next_review(None, "q01", 90, T0)
    assert (s1.repetitions, s1.interval_days) == (1, 1.0)
    s2 = next_review(s1, "q01", 90, T0 + timedelta(days=1))
    assert (s2.repetitions, s2.interval_days) == (2, 6.0)
    s3 = next_review(s2, "q01", 90, T0 + timedelta(days=7))
    assert s3.repetitions == 3 and s3.interval_days == pytest.approx(6.0 * s2.ease, abs=0.1)
    assert s3.due_at == s3.last_at + timedelta(days=s3.interval_days)
    failed = next_review(s3, "q01", 20, T0 + timedelta(days=30))
    assert (failed.repetitions, failed.interval_days) == (0, FAIL_INTERVAL_DAYS)
    assert failed.ease < s3.ease


def test_a_failed_first_answer_comes_back_before_a_strong_one():
    # issue 26: q01 = 95 and q02 = 0 on the first try were both "next review" a day later
    strong, failed = next_review(None, "q01", 95, T0), next_review(None, "q02", 0, T0)
    assert failed.due_at < strong.due_at
    assert failed.due_at - T0 <= timedelta(hours=1) and strong.due_at - T0 == timedelta(days=1)


def test_ease_never_falls_below_the_floor():
    s = None
    for day in range(10):
        s = next_review(s, "q01", 0, T0 + timedelta(days=day))
    assert s.ease == pytest.approx(1.3)


def test_schedule_is_replayed_from_history_ignoring_errors(store, bank, settings):
    _record(store, bank, settings, "q05", 1.0, when=T0)
    failing = _session(store, bank, settings, grader=FakeGrader(fail_with="endpoint down"))
    failing.grade(bank.get("q05"), "an answer whose grading failed")
    sched = schedule_for(all_attempts(store))
    assert set(sched) == {"q05"}
    assert sched["q05"].repetitions == 1 and sched["q05"].last_score == 100
    assert not sched["q05"].is_due(T0 + timedelta(hours=23)) and sched["q05"].is_due(T0 + timedelta(days=1, minutes=1))


# --------------------------------------------------------------------------- question choice


def test_new_user_gets_the_first_question_then_the_next_unseen(store, bank, settings):
    session = _session(store, bank, settings)
    first = session.next_question()
    assert first.rubric.id == bank.ids()[0] and "never" in first.reason
    assert session.next_question().rubric.id == bank.ids()[1]  # already asked this session: skipped


def test_due_questions_come_first_weakest_first(store, bank, settings):
    _record(store, bank, settings, "q03", 0.9, when=T0 - timedelta(days=10))
    _record(store, bank, settings, "q07", 0.2, when=T0 - timedelta(days=10))
    _record(store, bank, settings, "q09", 0.5, when=T0 - timedelta(hours=1))  # not due yet
    picks = rank_questions(bank, all_attempts(store), now=T0)
    assert [p.rubric.id for p in picks[:2]] == ["q07", "q03"]  # both due, weaker first
    assert "due for review" in picks[0].reason
    assert picks[2].rubric.id == "q01"  # then never-seen questions in bank order
    assert picks[-1].rubric.id == "q09"  # seen and not due: last
    assert len(picks) == len(bank)


def test_not_due_questions_are_ordered_weakest_recent_first(store, bank, settings):
    for qid in bank.ids():
        _record(store, bank, settings, qid, 1.0 if qid != "q11" else 0.7, when=T0 - timedelta(hours=2))
    picks = rank_questions(bank, all_attempts(store), now=T0)
    assert picks[0].rubric.id == "q11" and "weakest" in picks[0].reason


def test_due_only_lists_only_due_questions(store, bank, settings):
    assert rank_questions(bank, all_attempts(store), now=T0, due_only=True) == []
    _record(store, bank, settings, "q12", 0.4, when=T0 - timedelta(days=2))
    _record(store, bank, settings, "q13", 0.4, when=T0 - timedelta(minutes=5))
    session = _session(store, bank, settings, due_only=True)
    assert session.next_question().rubric.id == "q12"
    assert session.next_question() is None


def test_section_filter_and_explicit_question_first(store, bank, settings):
    session = _session(store, bank, settings, questions=["5"], section="nlp", count=3)
    ids = [session.next_question().rubric.id for _ in range(3)]
    assert ids[0] == "q05"  # asked for explicitly, whatever the section
    assert all(bank.get(q).section == "nlp" for q in ids[1:])
    assert session.next_question() is None and session.finished


def test_random_pick_stays_inside_the_pool_and_varies(store, bank, settings):
    seen = set()
    for seed in range(8):
        s = PracticeSession(store, bank, grader=FakeGrader(), settings=settings,
                            options=SessionOptions(random=True, section="technical"), rng=random.Random(seed))
        pick = s.next_question()
        assert pick.rubric.section == "technical" and pick.reason == "picked at random"
        seen.add(pick.rubric.id)
    assert len(seen) > 1


def test_unknown_question_is_refused_up_front(store, bank, settings):
    from mlgrade.errors import UnknownQuestionError

    with pytest.raises(UnknownQuestionError):
        _session(store, bank, settings, questions=["q99"])


# --------------------------------------------------------------------------- grading and storing


def test_graded_attempt_is_stored_with_its_grade(store, bank, settings):
    rubric = bank.get("q05")
    session = _session(store, bank, settings, grader=_all_covered(rubric))
    grade, attempt_id = session.grade(rubric, "Scaling depends on the model.\nTrees do not care.", started_at="t0")
    assert grade.ok and grade.score == 100
    [row] = all_attempts(store)
    assert row.id == attempt_id and row.session_id == session.session_id and row.started_at == "t0"
    assert row.answer.endswith("Trees do not care.") and row.grader == "fake" and row.model == "fake-model"
    assert row.grade["judgments"][0]["status"] == "covered"


def test_grader_error_is_stored_as_an_error_never_a_score(store, bank, settings):
    session = _session(store, bank, settings, grader=FakeGrader(fail_with="endpoint returned 502"))
    grade, attempt_id = session.grade(bank.get("q05"), "an answer")
    assert grade.outcome == "grader_error" and grade.score is None
    [row] = all_attempts(store)
    assert row.outcome == "grader_error" and row.score is None and "502" in row.error


def test_empty_answer_is_not_an_attempt(store, bank, settings):
    session = _session(store, bank, settings)
    grade, attempt_id = session.grade(bank.get("q05"), "   \n")
    assert grade.outcome == "skipped" and attempt_id is None and all_attempts(store) == []


# --------------------------------------------------------------------------- summary


def test_summary_uses_latest_score_per_question_and_its_missed_points(store, bank, settings):
    q05, q07 = bank.get("q05"), bank.get("q07")
    half = FakeGrader(statuses={kp.id: "covered" for kp in q05.key_points[:2]})
    session = _session(store, bank, settings, grader=half)
    first, _ = session.grade(q05, "first try")
    session.grader = _all_covered(q05)
    second, _ = session.grade(q05, "second try")
    session.grader = FakeGrader(statuses={kp.id: "covered" for kp in q07.key_points[1:]})
    third, _ = session.grade(q07, "time series answer")
    session.grader = FakeGrader(fail_with="timeout")
    session.grade(q07, "again")
    summary = session.summary()
    assert [q.question_id for q in summary.questions] == ["q05", "q07"]
    assert summary.questions[0].scores == [first.score, 100]
    assert summary.attempts == 3 and summary.errors == 1
    assert summary.mean_score == pytest.approx(round((100 + third.score) / 2, 1))
    # q05's latest attempt missed nothing, so only q07's first key point is weak
    assert [(m.question_id, m.key_point) for m in summary.weakest] == [("q07", q07.key_points[0].id)]


def test_summary_ignores_other_sessions(store, bank, settings):
    _record(store, bank, settings, "q01", 0.5)
    session = _session(store, bank, settings)
    assert session.summary().questions == []


# --------------------------------------------------------------------------- the terminal loop, scripted


class Script:
    """Stands in for the person: answers and menu keys in order."""

    def __init__(self, answers, keys):
        self.answers, self.keys, self.prompts = list(answers), list(keys), []

    def answer(self, default=""):
        item = self.answers.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def key(self, prompt, keys, default=None):
        self.prompts.append(keys)
        k = self.keys.pop(0)
        assert k in keys, f"{k!r} is not offered in {keys!r}"
        return k

    def editor(self, initial=""):
        return self.answer()


def _run(session, script):
    from mlgrade.practice.tui import Inputs, run_practice

    buf = io.StringIO()
    console = Console(file=buf, width=120, force_terminal=False)
    summary = run_practice(session, console, inputs=Inputs(answer=script.answer, key=script.key, editor=script.editor))
    return summary, buf.getvalue()


def test_loop_answer_model_answer_retry_next_quit(store, bank, settings):
    q05 = bank.get("q05")
    session = _session(store, bank, settings, grader=_all_covered(q05), questions=["q05"])
    script = Script(answers=["", "Scaling depends on the model.", "Second go.", "Third."],
                    keys=["m", "r", "n", "q"])
    summary, out = _run(session, script)
    assert "Empty answer" in out and "model answer" in out and q05.model_answer.split()[0] in out
    assert "100/100" in out
    assert [q.question_id for q in summary.questions] == ["q05", bank.ids()[0]]  # `n`: the most worth practising
    assert summary.questions[0].scores == [100, 100] and script.answers == [] and script.keys == []


def test_loop_follow_up_is_graded_as_an_answer_to_the_follow_up(store, bank, settings):
    from mlgrade.followup import choose_follow_up
    from mlgrade.practice.history import session_attempts

    q05 = bank.get("q05")
    grader = FakeGrader(statuses={q05.key_points[0].id: "covered"})
    session = _session(store, bank, settings, grader=grader, questions=["q05"])
    script = Script(answers=["It depends on the model.", "Trees split on thresholds."], keys=["f", "q"])
    summary, out = _run(session, script)
    main, follow = session_attempts(store, session.session_id)
    asked = choose_follow_up(q05, main.to_grade())
    assert "follow-up" in out and asked.question in out
    # the reply alone, graded against the follow-up's own key points, linked to the first answer
    assert (follow.kind, follow.parent_id, follow.answer) == ("follow_up", main.id, "Trees split on thresholds.")
    assert {j["key_point"] for j in follow.grade["judgments"]} == {kp.id for kp in asked.key_points}
    assert [a.id for a in all_attempts(store)] == [main.id]  # the schedule sees the main answer only
    assert summary.questions[0].scores == [main.score]
    assert "f" in script.prompts[0] and "f" not in script.prompts[1]  # one follow-up, offered once


def test_loop_ctrl_c_abandons_without_storing(store, bank, settings):
    from mlgrade.practice.terminal_input import Abandoned

    session = _session(store, bank, settings, questions=["q05"])
    summary, out = _run(session, Script(answers=[Abandoned()], keys=["q"]))
    assert "abandoned" in out and all_attempts(store) == [] and summary.questions == []


def test_loop_grader_error_offers_retry_and_no_follow_up(store, bank, settings):
    session = _session(store, bank, settings, grader=FakeGrader(fail_with="model overloaded"), questions=["q05"])
    script = Script(answers=["An answer."], keys=["q"])
    summary, out = _run(session, script)
    assert "Grading failed" in out and "--retry-errors" in out
    assert "f" not in script.prompts[0]
    assert summary.errors == 1 and summary.attempts == 0


def test_loop_ends_when_count_is_reached(store, bank, settings):
    session = _session(store, bank, settings, count=2)
    summary, out = _run(session, Script(answers=["one", "two"], keys=["n", "n"]))
    assert len(summary.questions) == 2 and "last question of this session" in out


def test_summary_rendering_names_weak_points(store, bank, settings):
    from mlgrade.practice.tui import render_summary

    session = _session(store, bank, settings)
    session.grade(bank.get("q05"), "A short answer.")
    buf = io.StringIO()
    render_summary(session.summary(), Console(file=buf, width=120), next_due="Next review due: q05")
    text = buf.getvalue()
    assert "Session summary" in text and "mean score 0/100" in text and "Weakest key points" in text
    assert bank.get("q05").key_points[0].id in text and "Next review due: q05" in text


# --------------------------------------------------------------------------- the command


def test_practice_refuses_without_a_terminal(cli):
    result = cli(["practice"], input="some answer\n")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: practice needs a terminal") and "mlgrade grade" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_practice_help_has_examples(cli):
    result = cli(["practice", "--help"])
    assert result.exit_code == 0 and "Examples" in result.output and "Ctrl-D" in result.output


# --------------------------------------------------------------------------- issue 17: Ctrl-C and a small screen


def test_ctrl_c_while_answering_returns_to_the_menu_then_retry_works(store, bank, settings):
    from mlgrade.practice.terminal_input import Abandoned

    q05 = bank.get("q05")
    session = _session(store, bank, settings, grader=_all_covered(q05), questions=["q05"])
    script = Script(answers=[Abandoned(), "Scaling depends on the model."], keys=["r", "q"])
    summary, out = _run(session, script)
    assert "abandoned" in out and "Ctrl-C again quits" in out
    assert script.prompts[0] == "nrmq"  # the menu, without a follow-up to answer
    assert summary.questions[0].scores == [100] and len(all_attempts(store)) == 1


def test_second_ctrl_c_at_the_menu_quits(store, bank, settings):
    from mlgrade.practice.terminal_input import Abandoned

    session = _session(store, bank, settings, questions=["q05"])
    script = Script(answers=[Abandoned()], keys=["q"])  # read_key maps Ctrl-C to q
    summary, out = _run(session, script)
    assert script.keys == [] and all_attempts(store) == [] and summary.questions == []


def test_score_line_sits_right_above_the_menu(store, bank, settings):
    q05 = bank.get("q05")
    session = _session(store, bank, settings, grader=_all_covered(q05), questions=["q05"])
    summary, out = _run(session, Script(answers=["Scaling depends on the model."], keys=["q"]))
    lines = out.splitlines()
    menu = next(i for i, line in enumerate(lines) if "q quit" in line)
    assert lines[menu - 1].startswith("q05 · 100/100 strong · ") and "key points covered" in lines[menu - 1]


def test_wrapped_strengths_and_improvements_stay_indented(bank):
    from mlgrade.models import Grade
    from mlgrade.render import render_grade

    long = ("Add: with gradient descent, scaling improves the conditioning of the loss surface and speeds up "
            "convergence, which matters most for badly scaled inputs")
    grade = Grade(question_id="q05", outcome="graded", score=50, band="weak", improvements=[long], strengths=[long],
                  grader="offline")
    buf = io.StringIO()
    render_grade(grade, bank.get("q05"), Console(file=buf, width=80, force_terminal=False))
    lines = buf.getvalue().splitlines()
    for mark in ("+", "→"):
        first = next(i for i, line in enumerate(lines) if line.startswith(f"  {mark} Add:"))
        assert lines[first + 1].startswith("    ") and lines[first + 1].strip(), lines[first:first + 3]
    grade = grade.model_copy(update={"follow_up": long})
    buf = io.StringIO()
    render_grade(grade, bank.get("q05"), Console(file=buf, width=80, force_terminal=False))
    lines = buf.getvalue().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("Follow-up: Add:"))
    assert lines[first + 1].startswith(" " * len("Follow-up: ")), lines[first:first + 3]


# --------------------------------------------------------------------------- the answer box


def _shown(text, width):
    """What the answer box shows for `text` in a terminal `width` columns wide, row by row."""
    from prompt_toolkit.layout.processors import TransformationInput

    from mlgrade.practice.terminal_input import BOX_PREFIX, word_wrap_processor

    ti = TransformationInput(None, None, 0, lambda i: i, [("", text)], width, 10)
    t = word_wrap_processor().apply_transformation(ti)
    shown = "".join(f[1] for f in t.fragments)
    row = width - len(BOX_PREFIX)
    return [shown[k:k + row] for k in range(0, len(shown), row)], t


def test_the_answer_box_wraps_between_words():
    # issue 26: the practice input box wrapped inside words ("…a much larger pool o" / "f unlabelled data")
    text = ("Semi-supervised learning trains on a small labelled set and a much larger pool of unlabelled data, "
            "using pseudo-labels or consistency regularisation to exploit the unlabelled part.")
    for width in (24, 40, 57, 80):
        rows, t = _shown(text, width)
        assert " ".join(" ".join(rows).split()) == text  # only spaces were added, and only for display
        for a, b in zip(rows, rows[1:]):
            assert a.endswith(" ") or b.startswith(" ") or not (a[-1:].isalnum() and b[:1].isalnum()), (width, a, b)
        for i in range(len(text) + 1):  # the cursor maps there and back
            assert t.display_to_source(t.source_to_display(i)) == i


def test_a_word_longer_than_a_row_still_breaks_at_the_edge():
    rows, _ = _shown("see https://example.org/" + "x" * 60 + " now", 30)
    assert rows[0].startswith("see ") and len(rows[0]) == 28


def test_a_ctrl_c_before_the_menu_prompt_is_ready_quits_cleanly(monkeypatch):
    """A quick second Ctrl-C after an abandoned answer can land before prompt_toolkit owns the
    terminal: it raised KeyboardInterrupt and practice ended with exit 130 (seen in a CI run)."""
    from mlgrade.practice import terminal_input

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(terminal_input, "_read_key", interrupted)
    assert terminal_input.read_key("› ", "nrmq", default="n") == "q"

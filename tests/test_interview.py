"""`mlgrade interview` through the library: the draw, the verdict rule, the flow (main answer →
follow-up → answer) with history linking, resume, the report file, and the scripted terminal loop."""

from __future__ import annotations

import io
import random
import re
from collections import Counter

import pytest
import respx
from rich.console import Console

from mlgrade.graders.fake import FakeGrader
from mlgrade.practice.interview_draw import draw
from mlgrade.practice.interview_result import VERDICT_RULE, QuestionResult, verdict


@pytest.fixture
def settings():
    from mlgrade.config import load_settings

    return load_settings(exec_code=False)


def _store_scores(store, bank, settings, scores: dict[str, float]) -> None:
    """History with one graded attempt per question, scored as given (stored directly)."""
    from mlgrade.scoring import band_for

    for qid, score in scores.items():
        store.add_attempt({"question_id": qid, "outcome": "graded", "score": score, "band": band_for(score),
                           "judgments": []}, "an earlier answer", session_id="earlier")


# --------------------------------------------------------------------------- the draw


def test_the_same_seed_draws_the_same_questions(bank):
    first = draw(bank, [], count=5, rng=random.Random(11))
    again = draw(bank, [], count=5, rng=random.Random(11))
    other = draw(bank, [], count=5, rng=random.Random(12))
    assert [d.question_id for d in first] == [d.question_id for d in again]
    assert [d.question_id for d in first] != [d.question_id for d in other]


def test_a_default_draw_mixes_sections(bank):
    for seed in range(20):
        drawn = draw(bank, [], count=5, rng=random.Random(seed))
        sections = [bank.rubrics[d.question_id].section for d in drawn]
        assert len(drawn) == 5 and len(set(sections)) == 5, sections  # six sections: five different ones
        assert len({d.question_id for d in drawn}) == 5


def test_sections_limit_the_draw_and_a_small_pool_gives_fewer(bank):
    drawn = draw(bank, [], count=25, sections=["nlp"], rng=random.Random(1))
    assert drawn and {bank.rubrics[d.question_id].section for d in drawn} == {"nlp"}
    assert len(drawn) == len(bank.by_section("nlp"))


def test_weak_areas_from_history_are_drawn_more_often(bank, store, settings):
    from mlgrade.practice.history import all_attempts

    weak = [r.id for r in bank.by_section("nlp")]
    _store_scores(store, bank, settings, {**{q: 5.0 for q in weak},
                                         **{r.id: 95.0 for r in bank.rubrics.values() if r.id not in weak}})
    history = all_attempts(store)
    with_history = Counter(bank.rubrics[draw(bank, history, count=1, rng=random.Random(s))[0].question_id].section
                           for s in range(300))
    fresh = Counter(bank.rubrics[draw(bank, history, count=1, fresh=True, rng=random.Random(s))[0].question_id].section
                    for s in range(300))
    assert with_history["nlp"] > 2 * fresh["nlp"], (with_history, fresh)
    reason = next(d.reason for d in draw(bank, history, count=25) if d.question_id in weak)
    assert "last score here was 5" in reason and "weak area (nlp" in reason


def test_fresh_ignores_history(bank, store, settings):
    from mlgrade.practice.history import all_attempts

    _store_scores(store, bank, settings, {"q05": 3.0, "q07": 4.0})
    a = draw(bank, all_attempts(store), count=5, fresh=True, rng=random.Random(3))
    b = draw(bank, [], count=5, fresh=True, rng=random.Random(3))
    assert a == b


# --------------------------------------------------------------------------- the verdict rule


@pytest.mark.parametrize(("scores", "decision"), [
    ([85, 80, 90], "strong hire"),
    ([95, 95, 55], "hire"),          # mean 81.7 but one answer under 60
    ([65, 65], "hire"),
    ([90, 90, 25], "lean no hire"),  # mean 68.3 but one poor answer
    ([64.9, 65], "lean no hire"),
    ([45, 45], "lean no hire"),
    ([44.9, 45], "no hire"),
    ([0, 10], "no hire"),
])
def test_verdict_rule(scores, decision):
    assert verdict(scores).decision == decision


def test_no_graded_answer_gives_no_verdict():
    v = verdict([])
    assert v.decision is None and v.mean is None


def test_the_rule_is_one_sentence_naming_its_thresholds():
    assert VERDICT_RULE.count(". ") == 0 and VERDICT_RULE.endswith(".")
    for figure in ("70%", "30%", "80", "60", "65", "30", "45"):
        assert figure in VERDICT_RULE


def _grade(score: float | None, outcome: str = "graded"):
    from mlgrade.models import Grade
    from mlgrade.scoring import band_for

    return Grade(question_id="q05", outcome=outcome, score=score, band=band_for(score) if score is not None else None,
                 error=None if outcome == "graded" else "x")


def test_question_score_weighs_main_and_follow_up():
    q = QuestionResult(1, "q05", "?", "technical", "", "done", main=_grade(80), follow_up=_grade(50))
    assert q.score == pytest.approx(0.7 * 80 + 0.3 * 50)
    not_graded = QuestionResult(1, "q05", "?", "technical", "", "done", main=_grade(80),
                                follow_up=_grade(None, "skipped"))
    assert not_graded.score == 80
    skipped_follow = QuestionResult(1, "q05", "?", "technical", "", "done", main=_grade(80), follow_up_skipped=True)
    assert skipped_follow.score == pytest.approx(56)
    assert QuestionResult(1, "q05", "?", "technical", "", "skipped").score == 0
    failed = QuestionResult(1, "q05", "?", "technical", "", "done", main=_grade(None, "grader_error"))
    assert failed.score is None  # a failure is not a zero
    assert QuestionResult(1, "q05", "?", "technical", "", "pending").score is None


# --------------------------------------------------------------------------- the flow, scripted


class Clock:
    """Monotonic time that moves `step` seconds every time it is read."""

    def __init__(self, step: float = 30.0):
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


class Script:
    """Stands in for the candidate: answers (or exceptions to raise) and Ctrl-C menu keys, in order."""

    def __init__(self, answers, keys=()):
        self.answers, self.keys = list(answers), list(keys)
        self.defaults, self.clocks = [], []

    def answer(self, hint="", default="", clock=None):
        self.defaults.append(default)
        self.clocks.append(clock() if clock else None)
        item = self.answers.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def key(self, prompt, keys, default=None):
        k = self.keys.pop(0)
        assert k in keys, f"{k!r} is not offered in {keys!r}"
        return k


Q05_MAIN = ("It depends on the model: k-NN and SVM use distances, so a feature with a large range dominates "
            "the distance. Tree-based models split on thresholds and do not need scaling.")
Q07_MAIN = "Use a rolling-origin split: train on the past, validate on the block that follows, never shuffle."
FOLLOW = "I would standardise inside the pipeline, fitting the scaler on the training folds only."


def _start(store, bank, settings, grader, ask=("q05", "q07"), **options):
    from mlgrade.practice.interview import Interview, InterviewOptions

    options.setdefault("minutes", 10)
    return Interview.start(store, bank, InterviewOptions(ask=list(ask), **options), grader=grader, settings=settings)


def _run(interview, script, step=30.0):
    from mlgrade.practice.interview_tui import Inputs, run_interview

    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=False)
    result = run_interview(interview, console, inputs=Inputs(answer=script.answer, key=script.key, now=Clock(step)))
    return result, buf.getvalue()


def _flat(out: str) -> str:
    """The screen's words without panel borders and line breaks (a panel wraps at 80 columns)."""
    import re

    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", out).split())


def _offline():
    from mlgrade.graders.offline import OfflineGrader

    return OfflineGrader()


def test_offline_interview_asks_follow_ups_and_links_them_in_history(store, bank, settings):
    from mlgrade.practice.history import session_attempts

    interview = _start(store, bank, settings, _offline())
    script = Script([Q05_MAIN, FOLLOW, Q07_MAIN, "Leave a gap between the train and validation windows."])
    result, out = _run(interview, script)
    assert script.answers == [] and result.status == "finished"
    assert "/100" not in out  # feedback at the end, not between questions
    attempts = session_attempts(store, interview.id)
    assert [(a.question_id, a.kind) for a in attempts] == [("q05", "main"), ("q05", "follow_up"),
                                                           ("q07", "main"), ("q07", "follow_up")]
    assert attempts[1].parent_id == attempts[0].id and attempts[3].parent_id == attempts[2].id
    assert attempts[1].answer == FOLLOW  # the follow-up answer alone, not glued to the first one
    for q, main in zip(result.questions, (bank.get("q05"), bank.get("q07"))):
        assert q.follow_up_question in [f.question for f in main.follow_ups]
        assert q.follow_up_question in _flat(out)
        follow = next(f for f in main.follow_ups if f.question == q.follow_up_question)
        if follow.gradable:  # graded against the follow-up's own key points, not the question's
            assert {j.key_point for j in q.follow_up.judgments} == {kp.id for kp in follow.key_points}
    assert result.verdict.decision in ("strong hire", "hire", "lean no hire", "no hire")
    assert result.questions[0].seconds == 120 and result.questions[0].budget_seconds == 300


@pytest.mark.parametrize(("gap", "asked"), [("fit-on-train-only", 2), ("scaling-methods", 1),
                                             ("regularisation-penalty", 0)])
def test_without_the_llm_the_follow_up_probes_the_point_missed(store, bank, settings, gap, asked):
    q05 = bank.get("q05")
    grader = FakeGrader(statuses={kp.id: "covered" for kp in q05.key_points if kp.id != gap})
    interview = _start(store, bank, settings, grader, ask=["q05"])
    result, out = _run(interview, Script([Q05_MAIN, FOLLOW]))
    assert result.questions[0].follow_up_question == q05.follow_ups[asked].question
    assert gap in q05.follow_ups[asked].targets


@respx.mock
def test_llm_interview_asks_the_graders_follow_up_and_grades_the_reply_against_its_key_points(
        store, bank, llm_settings):
    from llm_helpers import CHAT_URL, FakeSleep, ok, reply_for, sent

    from mlgrade.followup import follow_up_rubric
    from mlgrade.graders.llm import LLMGrader
    from mlgrade.graders.structured import RetryPolicy
    from mlgrade.practice.history import session_attempts

    q05 = bank.get("q05")
    chosen = q05.follow_ups[2]  # not the one the missed points would pick: the model's choice wins
    main_reply = dict(reply_for(q05, {"depends-on-model": ("covered", "It depends on the model")}),
                      follow_up=chosen.question)
    first_kp = chosen.key_points[0].id
    follow_reply = reply_for(follow_up_rubric(q05, chosen), {first_kp: ("covered", "fitting the scaler")})
    route = respx.post(CHAT_URL).mock(side_effect=[ok(main_reply), ok(follow_reply)])
    grader = LLMGrader(llm_settings, policy=RetryPolicy(sleep=FakeSleep()))
    interview = _start(store, bank, llm_settings, grader, ask=["q05"])
    result, out = _run(interview, Script([Q05_MAIN, FOLLOW]))

    [q] = result.questions
    assert route.call_count == 2 and q.follow_up_question == chosen.question
    assert q.main.grader == "llm" and q.follow_up.outcome == "graded"
    assert {j.key_point: j.status for j in q.follow_up.judgments}[first_kp] == "covered"
    assert {j.key_point for j in q.follow_up.judgments} == {kp.id for kp in chosen.key_points}
    user = sent(route, 1)["messages"][1]["content"]
    assert Q05_MAIN in user and FOLLOW in user  # both answers go to the model, as data
    assert re.search(r"^<answer-first-[0-9a-f]{16}>$", user, re.MULTILINE)
    attempts = session_attempts(store, interview.id)
    assert [(a.kind, a.parent_id, a.grader) for a in attempts] == [("main", None, "llm"),
                                                                   ("follow_up", attempts[0].id, "llm")]


def test_only_main_answers_feed_the_schedule_and_the_stats(store, bank, settings):
    from mlgrade.practice.history import all_attempts, missed_key_points
    from mlgrade.practice.schedule import schedule_for

    interview = _start(store, bank, settings, _offline())
    _run(interview, Script([Q05_MAIN, FOLLOW, Q07_MAIN, FOLLOW]))
    mains = all_attempts(store)
    assert [a.kind for a in mains] == ["main", "main"]
    assert set(schedule_for(mains)) == {"q05", "q07"}
    kp_ids = {kp.id for r in (bank.get("q05"), bank.get("q07")) for kp in r.key_points}
    assert {m.key_point for m in missed_key_points(mains, bank)} <= kp_ids


def test_a_rubric_without_follow_up_key_points_says_not_graded(store, bank, settings, tmp_path):
    from mlgrade.rubrics import load_rubrics

    source = bank.get("q05").model_dump(mode="json", exclude_defaults=False)
    source.update(id="custom-scaling", number=0, follow_ups=["Which scaler would you pick, and why?"])
    import yaml

    (tmp_path / "rubrics").mkdir()
    (tmp_path / "rubrics" / "custom.yaml").write_text(yaml.safe_dump(source), encoding="utf-8")
    custom = load_rubrics(tmp_path / "rubrics")
    interview = _start(store, custom, settings, _offline(), ask=["custom-scaling"])
    result, out = _run(interview, Script([Q05_MAIN, "A robust scaler, because of outliers."]))
    [q] = result.questions
    assert q.follow_up_question == "Which scaler would you pick, and why?"
    assert q.follow_up.outcome == "skipped" and "not graded" in q.follow_up.error
    assert q.score == q.main.score  # the main answer alone counts


def test_feedback_now_shows_each_grade(store, bank, settings):
    interview = _start(store, bank, settings, _offline(), ask=["q05"], feedback="now")
    _, out = _run(interview, Script([Q05_MAIN, FOLLOW]))
    assert out.count("/100") >= 1 and "q05 score" in out


def test_the_clock_runs_against_the_budget_and_going_over_is_noted(store, bank, settings):
    from mlgrade.practice.interview_tui import clock_text

    assert clock_text(83, 300) == "⏱ 1:23 of 5:00"
    assert clock_text(320, 300) == "⏱ 5:20 of 5:00 · over by 0:20"
    interview = _start(store, bank, settings, _offline(), ask=["q05"], minutes=1)
    script = Script([Q05_MAIN, FOLLOW])
    result, out = _run(interview, script, step=50)
    assert script.clocks[0] == "⏱ 0:50 of 1:00"  # read while typing: 50 s in
    assert script.clocks[1] == "⏱ 2:30 of 1:00 · over by 1:30"  # the follow-up goes on from the main answer
    # each answer reads the clock three times (start, the toolbar, submit): 100 s each
    assert result.questions[0].seconds == 200 and result.questions[0].over_seconds == 140


def test_ctrl_c_skips_a_question_or_ends_the_interview_keeping_what_was_graded(store, bank, settings, tmp_path):
    from mlgrade.practice.history import session_attempts
    from mlgrade.practice.interview_report import write_report
    from mlgrade.practice.terminal_input import Abandoned

    interview = _start(store, bank, settings, _offline(), ask=["q05", "q06", "q07"])
    script = Script([Q05_MAIN, FOLLOW, Abandoned("half"), Abandoned("")], keys=["s", "e"])
    result, out = _run(interview, script)
    assert result.status == "ended" and [q.status for q in result.questions] == ["done", "skipped", "pending"]
    assert result.questions[1].score == 0 and result.questions[2].score is None
    assert len(session_attempts(store, interview.id)) == 2  # both q05 answers kept
    report = write_report(result, bank.rubrics, tmp_path / "r.md").read_text(encoding="utf-8")
    assert "ended after 2 of 3 questions" in report and "Skipped." in report
    assert "q07" in report and "## 3." not in report  # never asked: listed, not reported on


def test_ctrl_c_then_carry_on_keeps_the_text_typed(store, bank, settings):
    from mlgrade.practice.terminal_input import Abandoned

    interview = _start(store, bank, settings, _offline(), ask=["q05"])
    script = Script([Abandoned("It depends"), Q05_MAIN, FOLLOW], keys=["c"])
    result, _ = _run(interview, script)
    assert script.defaults[1] == "It depends" and result.status == "finished"


def test_resume_continues_at_the_follow_up(store, bank, settings):
    from mlgrade.practice.history import session_attempts
    from mlgrade.practice.interview import Interview

    first = _start(store, bank, settings, _offline())
    first.answer_main(0, Q05_MAIN, seconds=40)  # then the terminal closed
    again = Interview.resume(store, bank, grader=_offline(), settings=settings)
    assert again.id == first.id and again.current() == (0, "follow_up")
    result, out = _run(again, Script([FOLLOW, Q07_MAIN, FOLLOW]))
    assert result.status == "finished" and result.questions[0].seconds == 100
    kinds = [(a.kind, a.parent_id) for a in session_attempts(store, first.id)]
    assert kinds[1] == ("follow_up", session_attempts(store, first.id)[0].id) and len(kinds) == 4
    from mlgrade.errors import UsageError

    with pytest.raises(UsageError, match="no unfinished interview"):
        Interview.resume(store, bank, grader=_offline(), settings=settings)


# --------------------------------------------------------------------------- the report file


def _finished(store, bank, settings, answers=(Q05_MAIN, FOLLOW)):
    interview = _start(store, bank, settings, _offline(), ask=["q05"])
    result, _ = _run(interview, Script(list(answers)))
    return result


def test_markdown_report_holds_the_verdict_scores_times_and_study_list(store, bank, settings, tmp_path):
    from mlgrade.practice.interview_report import write_report
    from mlgrade.textfiles import MARK_MD

    result = _finished(store, bank, settings)
    text = write_report(result, bank.rubrics, tmp_path / "r.md").read_text(encoding="utf-8")
    assert text.startswith(MARK_MD)
    assert f"Verdict: {result.verdict.decision.upper()}" in text and VERDICT_RULE in text
    main = result.questions[0].main
    assert f"{main.score:g} {main.band}" in text and "2:00 of 10:00" in text
    assert "Key points missed" in text and "## Study next" in text
    assert len(result.study) <= 3 and all(s.text in text for s in result.study)


def test_html_report_escapes_the_candidates_markup(store, bank, settings, tmp_path):
    from mlgrade.practice.interview_report import write_report
    from mlgrade.textfiles import MARK_HTML

    result = _finished(store, bank, settings, answers=(Q05_MAIN + " <script>alert(1)</script>", FOLLOW))
    text = write_report(result, bank.rubrics, tmp_path / "r.html").read_text(encoding="utf-8")
    assert MARK_HTML in text and "<script>" not in text and "&lt;script&gt;" in text


def test_the_report_never_overwrites_a_file_mlgrade_did_not_write(store, bank, settings, tmp_path):
    from mlgrade.errors import UsageError
    from mlgrade.practice.interview_report import check_report_path

    mine = tmp_path / "notes.md"
    mine.write_text("my own notes\n", encoding="utf-8")
    with pytest.raises(UsageError, match="not written by mlgrade"):
        check_report_path(mine)
    with pytest.raises(UsageError, match=r"\.md or \.html"):
        check_report_path(tmp_path / "report.txt")
    assert mine.read_text(encoding="utf-8") == "my own notes\n"


# --------------------------------------------------------------------------- the commands


def test_interview_refuses_without_a_terminal(cli):
    result = cli(["interview", "--grader", "offline"], input="an answer\n")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: interview needs a terminal")
    assert len(result.stderr.strip().splitlines()) == 1


def test_interview_help_has_examples(cli):
    result = cli(["interview", "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0 and "Examples" in result.output and "--resume" in result.output


def test_history_lists_interviews_and_shows_one_again(cli, store, bank, settings):
    result = _finished(store, bank, settings)
    listed = cli(["history", "interviews", "--json"])
    assert listed.exit_code == 0, listed.output
    import json

    [row] = json.loads(listed.stdout)
    assert row["interview_id"] == result.interview_id and row["status"] == "finished" and row["answered"] == 1
    shown = cli(["history", "interviews", result.interview_id[:6]], env={"COLUMNS": "80"})
    assert shown.exit_code == 0, shown.output
    assert f"Verdict: {result.verdict.decision.upper()}" in shown.stdout and "q05 · main" in shown.stdout
    data = json.loads(cli(["history", "interviews", result.interview_id, "--json"]).stdout)
    assert data["verdict"] == result.verdict.decision and data["questions"][0]["follow_up_attempt"]
    attempts = cli(["history"], env={"COLUMNS": "120"}).stdout
    assert f"q05 ↳#{data['questions'][0]['main_attempt']}" in attempts
    missing = cli(["history", "interviews", "ffffffffffff"])
    assert missing.exit_code == 2 and missing.stderr.startswith("error: no interview")

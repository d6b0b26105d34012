"""`mlgrade eval --builtin`: the shipped expert answers, the fixed sample, exact figures from a
judge scripted to a known agreement, the stored record, stale marking, doctor's line, the
reminder in grade, the figure in --json and reports, judge variants."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from datetime import datetime, timezone

import pytest
from benchmark_helpers import ScriptedGrader, scripted_judge
from fake_openai_server import FakeOpenAIServer

from mlgrade.config import load_settings
from mlgrade.evaluation.benchmark import arun_builtin, builtin_rows, stratified_sample, wilson

SAMPLE = 10


@pytest.fixture(autouse=True)
def _no_code_runs(monkeypatch):
    # coding answers would run in the sandbox; the scripted judges decide the statuses alone
    monkeypatch.setenv("MLGRADE_EXEC", "0")


@pytest.fixture(scope="module")
def rows():
    return builtin_rows()


@pytest.fixture(scope="module")
def sample(rows):
    return stratified_sample(rows, SAMPLE)


def _factory(sample, offline_misses=()):
    """Graders for a run: the scripted stand-in for the offline grader, the real LLM grader."""
    from mlgrade.grading import make_grader

    return lambda s, kind: ScriptedGrader(sample, offline_misses) if kind == "offline" else make_grader(s, kind)


def _today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


# --------------------------------------------------------------------------- the data and the sample


def test_both_expert_sets_ship_with_the_package(rows):
    assert len(rows) == 275
    assert Counter(r.question_id for r in rows) == {f"q{i:02d}": 11 for i in range(1, 26)}
    assert [r.line for r in rows] == list(range(1, 276))  # one numbering across the two files


def test_the_sample_is_fixed_and_stratified_by_question_and_kind(rows):
    first = stratified_sample(rows, 25)
    assert [r.answer_id for r in first] == [r.answer_id for r in stratified_sample(list(reversed(rows)), 25)]
    assert len({r.question_id for r in first}) == 25
    assert set(Counter(r.kind for r in first).values()) == {5}  # the five kinds five times each
    fifty = Counter(r.question_id for r in stratified_sample(rows, 50))
    assert set(fifty.values()) == {2}
    assert len(stratified_sample(rows, 1000)) == 275


def test_wilson_interval_matches_the_textbook_value():
    lo, hi = wilson(20, 25)
    assert (round(lo, 4), round(hi, 4)) == (0.6087, 0.9114)
    assert wilson(0, 0) is None


# --------------------------------------------------------------------------- exact figures, stored


def test_scripted_judges_give_exact_figures_and_verdict_and_are_stored(sample, bank, home):
    llm_misses = [sample[0].answer_id, sample[3].answer_id]  # 8 of 10 in the experts' band
    offline_misses = [r.answer_id for r in sample[:4]]  # 6 of 10
    with FakeOpenAIServer(responder=scripted_judge(sample, bank, llm_misses)) as srv:
        url = srv.base_url.replace("http://", "http://user:s3cret@")
        settings = load_settings(base_url=url, model="judge-7b", grader="llm")
        res = asyncio.run(arun_builtin(settings, sample=SAMPLE, bank=bank, grader_factory=_factory(sample, offline_misses)))
        assert len(srv.requests) == SAMPLE
    llm, off = res.llm[0].summary(), res.offline.summary()
    assert (llm["band_accuracy"], llm["within_one_band"], llm["not_graded"]) == (0.8, 0.8, 0)
    assert llm["band_accuracy_ci"] == [round(x, 3) for x in wilson(8, 10)]
    assert (off["band_accuracy"], off["within_one_band"]) == (0.6, 0.6)
    assert res.verdict == ("judge-7b agrees with the experts better than the offline grader: band accuracy 80% vs 60%")

    from mlgrade.store import Store

    with Store.for_settings(settings) as store:
        recs = [dict(r) for r in store.db.execute("SELECT * FROM measurements ORDER BY id")]
    assert [(r["grader"], r["model"], r["judge"], r["answers"]) for r in recs] == [
        ("llm", "judge-7b", "verdict-first", 10), ("offline", "", "", 10)]
    assert "s3cret" not in json.dumps(recs)
    assert recs[0]["base_url"].endswith(srv.base_url.removeprefix("http://"))
    figures = json.loads(recs[0]["data_json"])
    assert (figures["band_accuracy"], figures["offline_band_accuracy"], figures["worse_than_offline"]) == (0.8, 0.6, False)


def _measure(bank, sample, *, misses, offline_misses=()):
    """One scripted measurement against a fresh fake endpoint."""
    with FakeOpenAIServer(responder=scripted_judge(sample, bank, misses)) as srv:
        settings = load_settings(base_url=srv.base_url, model="judge-7b", grader="llm")
        return asyncio.run(arun_builtin(settings, sample=SAMPLE, bank=bank, grader_factory=_factory(sample, offline_misses)))


def test_a_worse_model_gets_the_plain_warning(sample, bank):
    res = _measure(bank, sample, misses=[r.answer_id for r in sample[:5]], offline_misses=[sample[9].answer_id])
    assert res.verdict == ("judge-7b agrees with the experts less than the offline grader: band accuracy 50% vs 90%. "
                           "Do not trust it over the offline grader (--grader offline)")


def test_an_answer_not_graded_counts_as_a_miss_in_the_verdict(sample, bank):
    with FakeOpenAIServer(script=["invalid"] * 3) as srv:  # the first answer's three asks all fail validation
        srv.responder = scripted_judge(sample, bank)
        settings = load_settings(base_url=srv.base_url, model="judge-7b", grader="llm")
        res = asyncio.run(arun_builtin(settings, sample=SAMPLE, bank=bank, concurrency=1, grader_factory=_factory(sample)))
    llm = res.llm[0].summary()
    assert (llm["graded"], llm["band_accuracy"], llm["band_accuracy_all"]) == (9, 1.0, 0.9)
    assert res.verdict.endswith("band accuracy 90% vs 100%; 1 of 10 answers not graded, counted as misses. "
                                "Do not trust it over the offline grader (--grader offline)")


# --------------------------------------------------------------------------- doctor, reminder, stale


def test_doctor_line_reminder_and_stale_marking(sample, bank, cli, tmp_path):
    from mlgrade.store import Store

    with FakeOpenAIServer(responder=scripted_judge(sample, bank)) as srv:
        args = ["--base-url", srv.base_url, "--model", "judge-7b"]
        answer = sample[1].answer
        before = cli(["grade", sample[1].question_id, answer, *args])
        assert before.exit_code == 0, before.output
        assert ("note: judge-7b was never measured against expert grades: `mlgrade eval --builtin --sample 25` "
                "shows how far to trust it") in before.stderr
        doc = json.loads(cli(["doctor", "--offline", "--json", *args]).stdout)
        assert doc["benchmark"]["line"] == "judge-7b: not measured yet: run `mlgrade eval --builtin --sample 25`"

        # measured worse than the offline grader (scripted misses on both sides)
        settings = load_settings(base_url=srv.base_url, model="judge-7b", grader="llm")
        srv.responder = scripted_judge(sample, bank, [r.answer_id for r in sample[:6]])
        asyncio.run(arun_builtin(settings, sample=SAMPLE, bank=bank, grader_factory=_factory(sample, [sample[0].answer_id])))
        srv.responder = scripted_judge(sample, bank)
        doc = json.loads(cli(["doctor", "--offline", "--json", *args]).stdout)
        assert doc["benchmark"]["line"] == (f"judge-7b: measured {_today()} on 10 expert-graded answers: band accuracy "
                                            f"40%, Spearman {doc['benchmark']['spearman']:.2f} (offline grader 90%)")
        assert doc["benchmark"]["stale"] is False
        after = cli(["grade", sample[1].question_id, answer, *args])
        assert ("note: judge-7b agreed with the experts less than the offline grader: band accuracy 40% vs 90% on 10 "
                f"answers ({_today()}); consider --grader offline") in after.stderr
        assert after.stderr.count("note: judge-7b") == 1
        graded = json.loads(cli(["grade", sample[1].question_id, answer, "--json", *args]).stdout)
        assert graded["expert_agreement"]["band_accuracy"] == 0.4
        assert graded["expert_agreement"]["worse_than_offline"] is True

        # a changed rubric set marks the figure stale
        import yaml

        from mlgrade.rubrics import builtin_rubrics_dir

        extra = tmp_path / "rubrics"
        extra.mkdir()
        src = next(builtin_rubrics_dir().glob(f"{sample[0].question_id}-*.yaml"))  # a question the figure covers
        data = yaml.safe_load(src.read_text(encoding="utf-8"))
        data["model_answer"] = "Edited. " + data["model_answer"]
        (extra / src.name).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        stale = json.loads(cli(["doctor", "--offline", "--json", *args], env={"MLGRADE_RUBRICS": str(extra)}).stdout)
        assert stale["benchmark"]["stale"] is True
        assert stale["benchmark"]["line"].endswith("; stale: the rubrics changed since, run "
                                                   "`mlgrade eval --builtin --sample 25` again")

        # a changed prompt too
        with Store.for_settings(settings) as store:
            store.db.execute("UPDATE measurements SET prompt_hash = 'older'")
        stale = json.loads(cli(["doctor", "--offline", "--json", *args]).stdout)
        assert stale["benchmark"]["stale_reason"] == "the prompt changed since"
        assert "(stale)" in cli(["grade", sample[1].question_id, answer, *args]).stderr


def test_good_measurement_means_no_reminder(sample, bank, cli):
    with FakeOpenAIServer(responder=scripted_judge(sample, bank)) as srv:
        # the base URL is part of the setting: measure and grade against one server
        settings = load_settings(base_url=srv.base_url, model="judge-7b", grader="llm")
        res = asyncio.run(arun_builtin(settings, sample=SAMPLE, bank=bank, grader_factory=_factory(sample, [sample[2].answer_id])))
        assert res.verdict == "judge-7b agrees with the experts better than the offline grader: band accuracy 100% vs 90%"
        out = cli(["grade", sample[1].question_id, sample[1].answer, "--base-url", srv.base_url, "--model", "judge-7b"])
    assert out.exit_code == 0, out.output
    assert "note:" not in out.stderr


def test_offline_grading_never_reminds_and_never_creates_the_store(cli, home, sample):
    # looking the figure up must not create the store: with --no-record nothing else does (a graded
    # attempt is otherwise recorded in the history, which is the store)
    out = cli(["grade", sample[1].question_id, sample[1].answer, "--grader", "offline", "--json", "--no-record"])
    assert out.exit_code == 0
    assert json.loads(out.stdout)["expert_agreement"] == {"measured": False, "grader": "offline", "model": "",
                                                          "judge": "", "hint": "mlgrade eval --builtin --sample 25"}
    assert not (home / "mlgrade.db").exists()


# --------------------------------------------------------------------------- the command


def test_cli_without_a_terminal_needs_yes_and_sends_nothing(cli, bank, sample):
    with FakeOpenAIServer(responder=scripted_judge(sample, bank)) as srv:
        out = cli(["eval", "--builtin", "--sample", SAMPLE, "--base-url", srv.base_url, "--model", "judge-7b"])
        assert out.exit_code == 2
        assert "10 requests to judge-7b (10 answers;" in out.stderr
        assert "add --yes to run it without a terminal" in out.stderr
        assert srv.requests == []


def test_cli_compare_grades_the_same_answers_with_each_variant(cli, bank, sample):
    with FakeOpenAIServer(responder=scripted_judge(sample, bank, [sample[0].answer_id])) as srv:
        out = cli(["eval", "--builtin", "--sample", SAMPLE, "--yes", "--json", "--base-url", srv.base_url,
                   "--model", "judge-7b", "--compare", "verdict-first,evidence-first"])
        assert out.exit_code == 0, out.output
        orders = Counter()
        for body in srv.requests:
            schema = body["response_format"]["json_schema"]["schema"]
            point = next(iter(schema["properties"]["key_points"]["properties"].values()))
            orders[tuple(point["properties"])] += 1
    assert orders == {("status", "evidence", "comment"): 10, ("evidence", "comment", "status"): 10}
    data = json.loads(out.stdout)
    assert [(r["label"], r["band_accuracy"]) for r in data["runs"][:2]] == [
        ("judge-7b", 0.9), ("judge-7b (evidence-first)", 0.9)]
    assert data["runs"][2]["label"] == "the offline grader"
    assert data["plan"]["requests"] == 20
    assert len(data["verdicts"]) == 2


def test_cli_offline_table_and_record(cli, home):
    out = cli(["eval", "--builtin", "--sample", 5, "--grader", "offline"])
    assert out.exit_code == 0, out.output
    assert "a fixed sample of 5 of the 275 expert-graded answers" in out.stdout
    assert re.search(r"the offline grader: band accuracy \d+% on 5 answers", out.stdout)
    doc = json.loads(cli(["doctor", "--offline", "--json", "--grader", "offline"]).stdout)
    assert doc["benchmark"]["line"].startswith(f"the offline grader: measured {_today()} on 5 expert-graded answers")


@pytest.mark.parametrize("args, message", [
    (["x.jsonl"], "--builtin measures on the built-in answers"),
    (["--out", "p.jsonl"], "--out does not apply to --builtin"),
    (["--compare", "evidence-first", "--grader", "offline"], "--compare compares judge variants of an LLM grader"),
    (["--compare", "bogus", "--base-url", "http://127.0.0.1:9/v1"], "unknown judge variant 'bogus'"),
])
def test_cli_refuses_what_does_not_apply(cli, args, message):
    out = cli(["eval", "--builtin", *args])
    assert out.exit_code == 2
    assert message in out.stderr


# --------------------------------------------------------------------------- judge variants


def test_judge_variant_setting_orders_the_schema_and_changes_the_prompt_hash(bank, monkeypatch):
    from mlgrade.errors import ConfigError
    from mlgrade.graders.llm import grading_model
    from mlgrade.graders.replies import strict_schema
    from mlgrade.measured import Setting, prompt_hash

    rubric = bank.get("q07")
    for judge, order in (("verdict-first", ["status", "evidence", "comment"]),
                         ("evidence-first", ["evidence", "comment", "status"])):
        schema = strict_schema(grading_model(rubric, judge))
        point = next(iter(schema["properties"]["key_points"]["properties"].values()))
        assert list(point["properties"]) == order and point["required"] == order
    assert prompt_hash(Setting("llm", "m", "u", "verdict-first")) != prompt_hash(Setting("llm", "m", "u", "evidence-first"))
    monkeypatch.setenv("MLGRADE_JUDGE", "evidence-first")
    assert load_settings().judge == "evidence-first"
    monkeypatch.setenv("MLGRADE_JUDGE", "vibes")
    with pytest.raises(ConfigError, match="unknown judge variant 'vibes'"):
        load_settings()


def test_report_carries_the_figure(cli, tmp_path, home):
    answers = tmp_path / "answers.csv"
    answers.write_text("id,question_id,answer\na1,q01,Semi-supervised learning uses a few labels and many unlabeled "
                       "examples.\n", encoding="utf-8")
    results = tmp_path / "results.jsonl"
    batch = cli(["batch", answers, "--out", results, "--grader", "offline", "--json"])
    assert batch.exit_code == 0, batch.output
    assert json.loads(batch.stdout)["expert_agreement"]["measured"] is False
    before = json.loads(cli(["report", results, "--json"]).stdout)["expert_agreement"]
    assert [(f["grader"], f["measured"]) for f in before] == [("offline", False)]
    assert cli(["eval", "--builtin", "--sample", 3, "--grader", "offline"]).exit_code == 0
    after = json.loads(cli(["report", results, "--json"]).stdout)["expert_agreement"]
    assert after[0]["measured"] is True and after[0]["answers"] == 3
    md = cli(["report", results]).stdout
    assert f"the offline grader: expert agreement measured {_today()} on 3 expert-graded answers" in md


def test_the_time_estimate_uses_the_last_measurement_of_the_setting(sample, bank):
    from mlgrade.evaluation.benchmark import ASSUMED_SECONDS_PER_REQUEST, plan
    from mlgrade.store import Store

    with FakeOpenAIServer(responder=scripted_judge(sample, bank)) as srv:
        settings = load_settings(base_url=srv.base_url, model="judge-7b", grader="llm")
        first = plan(settings, sample, bank, ["verdict-first"], concurrency=8)
        assert (first.requests, first.seconds) == (10, 2 * ASSUMED_SECONDS_PER_REQUEST)
        asyncio.run(arun_builtin(settings, sample=SAMPLE, bank=bank, grader_factory=_factory(sample)))
        with Store.for_settings(settings) as store:
            store.db.execute("UPDATE measurements SET data_json = json_set(data_json, '$.seconds_per_answer', 1.5)")
        assert plan(settings, sample, bank, ["verdict-first"], concurrency=8).seconds == 15.0
        assert plan(settings, sample, bank, ["verdict-first", "evidence-first"], concurrency=8).seconds == 30.0

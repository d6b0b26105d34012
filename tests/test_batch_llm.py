"""The batch engine with the real LLM grader against the loopback fake OpenAI server:
the server counts in-flight requests; 429 storms with Retry-After; 500s; malformed replies."""

from __future__ import annotations

import pytest

from batch_helpers import answers, read_out, write_jsonl
from fake_openai_server import FakeOpenAIServer
from mlgrade.batch.engine import grade_many
from mlgrade.config import load_settings


def llm_settings(srv):
    return load_settings(base_url=srv.base_url, grader="llm", model="gpt-4.1-mini")


@pytest.mark.parametrize("concurrency", [2, 5])
def test_server_never_sees_more_than_concurrency_in_flight(tmp_path, bank, concurrency):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(30))
    with FakeOpenAIServer(latency=0.05) as srv:
        s = grade_many([inp], tmp_path / "out.jsonl", settings=llm_settings(srv), bank=bank, concurrency=concurrency)
        assert srv.max_in_flight == concurrency
    assert s.run.graded == 30 and s.exit_code == 0


def test_429_storm_with_retry_after_backs_off_and_finishes(tmp_path, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(24))
    with FakeOpenAIServer(latency=0.01, script=["429"] * 10, retry_after=0.1) as srv:
        s = grade_many([inp], tmp_path / "out.jsonl", settings=llm_settings(srv), bank=bank, concurrency=8)
        assert srv.statuses.count(429) == 10
    assert s.run.rate_limits == 10 and s.min_concurrency <= 4
    assert s.run.graded == 24 and len({r["id"] for r in read_out(tmp_path / "out.jsonl")}) == 24


def test_500s_are_retried(tmp_path, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(6))
    with FakeOpenAIServer(script=["500", "500"]) as srv:
        s = grade_many([inp], tmp_path / "out.jsonl", settings=llm_settings(srv), bank=bank, concurrency=2)
    assert s.run.graded == 6 and s.exit_code == 0


def test_malformed_forever_becomes_grader_error_with_raw_reply(tmp_path, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(3))
    with FakeOpenAIServer(pmalformed=1.0) as srv:
        s = grade_many([inp], tmp_path / "out.jsonl", settings=llm_settings(srv), bank=bank, concurrency=3)
    rows = read_out(tmp_path / "out.jsonl")
    assert s.exit_code == 1 and all(r["outcome"] == "grader_error" and r["score"] is None for r in rows)
    assert all(r["raw_reply"] and "oops" in r["raw_reply"] for r in rows)


def test_cache_hit_makes_zero_requests(tmp_path, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(5))
    with FakeOpenAIServer() as srv:
        grade_many([inp], tmp_path / "one.jsonl", settings=llm_settings(srv), bank=bank)
        before = len(srv.requests)
        s = grade_many([inp], tmp_path / "two.jsonl", settings=llm_settings(srv), bank=bank)
        assert len(srv.requests) == before  # not one request
    assert s.run.cache_hits == 5
    one = {r["id"]: r["score"] for r in read_out(tmp_path / "one.jsonl")}
    assert {r["id"]: r["score"] for r in read_out(tmp_path / "two.jsonl")} == one


def test_batch_request_bodies_are_byte_identical_to_cold_built_ones(tmp_path, bank, monkeypatch):
    """The batch's memoised schemas, prompts and hashes (and any future prebuilding of them,
    issue 22) change when a body's parts are built, never its bytes: each body sent equals the
    one a fresh grader builds from cold caches with the same nonce."""
    import json

    import mlgrade.graders.prompts as prompts
    from mlgrade.graders.llm import LLMGrader, _grading_model
    from mlgrade.graders.replies import strict_schema

    monkeypatch.setattr(prompts, "new_nonce", lambda: "00112233aabbccdd")
    rows = answers(8, ("q01", "q07", "q05", "q17"))
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    with FakeOpenAIServer() as srv:
        settings = llm_settings(srv)
        _grading_model.cache_clear(), strict_schema.cache_clear(), prompts._SYSTEM_PROMPTS.clear()
        cold = LLMGrader(settings)
        expected = {r["answer"]: json.dumps(cold.build_request(bank.get(r["question_id"]), r["answer"]))
                    for r in rows}
        s = grade_many([inp], tmp_path / "out.jsonl", settings=settings, bank=bank, concurrency=2)
        sent_bodies = list(srv.requests)
    assert s.run.graded == 8 and len(sent_bodies) == 8
    for body in sent_bodies:
        answer = next(a for a in expected if a in body["messages"][1]["content"])
        assert json.dumps(body) == expected[answer]

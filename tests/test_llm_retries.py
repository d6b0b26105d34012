"""Retries, re-asks, fatal errors and capability detection of the LLM path (respx-mocked)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import respx
from pydantic import BaseModel

from llm_helpers import BASE_URL, CHAT_URL, FakeSleep, error, ok, reply_for, sent
from mlgrade.config import load_settings
from mlgrade.errors import GraderFailure
from mlgrade.grading import agrade_rubric
from mlgrade.graders.llm import Endpoint, LLMGrader, RetryPolicy, call_structured, detect_capabilities
from mlgrade.store import Store

ANSWER = "Use forward chaining: train on the past, test on the block after it. Shuffling leaks the future."


class Harness:
    def __init__(self, settings, **policy):
        self.sleep = FakeSleep()
        self.events = []
        self.grader = LLMGrader(settings, on_retry=self.events.append, policy=RetryPolicy(sleep=self.sleep, **policy))

    def grade(self, rubric, answer=ANSWER):
        return asyncio.run(agrade_rubric(rubric, answer, settings=self.grader.settings, grader=self.grader))

    def assess(self, rubric, answer=ANSWER):
        return asyncio.run(self.grader.assess(rubric, answer))

    @property
    def kinds(self):
        return [e.kind for e in self.events]


# --------------------------------------------------------------------------- transient failures


@respx.mock
def test_429_then_success_honours_retry_after(llm_settings, q07):
    route = respx.post(CHAT_URL).mock(side_effect=[error(429, "Rate limit reached", {"retry-after": "3"}), ok(reply_for(q07))])
    h = Harness(llm_settings)
    grade = h.grade(q07)
    assert grade.outcome == "graded" and route.call_count == 2 and grade.attempts == 2
    assert h.sleep.waits == [3.0]
    assert h.kinds == ["rate_limit"] and h.events[0].wait_s == 3.0 and h.events[0].status == 429


@respx.mock
def test_retry_after_ms_is_preferred(llm_settings, q07):
    respx.post(CHAT_URL).mock(side_effect=[error(429, "slow down", {"retry-after-ms": "250", "retry-after": "9"}),
                                           ok(reply_for(q07))])
    h = Harness(llm_settings)
    assert h.assess(q07).attempts == 2
    assert h.sleep.waits == [0.25]


@respx.mock
def test_500_twice_then_success_with_growing_backoff(llm_settings, q07):
    route = respx.post(CHAT_URL).mock(side_effect=[error(500, "boom"), error(502, "bad gateway"), ok(reply_for(q07))])
    h = Harness(llm_settings, initial_wait=1.0, jitter=0.0)
    grade = h.grade(q07)
    assert grade.outcome == "graded" and route.call_count == 3 and grade.attempts == 3
    assert h.kinds == ["server", "server"] and h.sleep.waits == [1.0, 2.0]


@respx.mock
def test_timeout_then_success(llm_settings, q07):
    route = respx.post(CHAT_URL).mock(side_effect=[httpx.ReadTimeout("slow"), ok(reply_for(q07))])
    h = Harness(llm_settings)
    assert h.grade(q07).outcome == "graded" and route.call_count == 2
    assert h.kinds == ["timeout"]


@respx.mock
def test_connection_error_then_success(llm_settings, q07):
    respx.post(CHAT_URL).mock(side_effect=[httpx.ConnectError("refused"), ok(reply_for(q07))])
    h = Harness(llm_settings)
    assert h.grade(q07).outcome == "graded" and h.kinds == ["connection"]


@respx.mock
def test_persistent_500_gives_grader_error_not_a_score(llm_settings, q07):
    route = respx.post(CHAT_URL).mock(return_value=error(503, "overloaded"))
    h = Harness(llm_settings, max_attempts=4)
    grade = h.grade(q07)
    assert grade.outcome == "grader_error" and grade.score is None and grade.band is None
    assert route.call_count == 4 and grade.attempts == 4 and "overloaded" in grade.error


@respx.mock
def test_total_wait_cap_stops_instead_of_sleeping_too_long(llm_settings, q07):
    route = respx.post(CHAT_URL).mock(return_value=error(429, "quota", {"retry-after": "500"}))
    h = Harness(llm_settings, max_total_wait=60)
    grade = h.grade(q07)
    assert grade.outcome == "grader_error" and route.call_count == 1 and h.sleep.waits == []


# --------------------------------------------------------------------------- invalid replies


@respx.mock
def test_malformed_json_is_reasked_with_the_validation_error(llm_settings, q07):
    route = respx.post(CHAT_URL).mock(side_effect=[ok('{"key_points": {"forward-chaining": '), ok(reply_for(q07))])
    h = Harness(llm_settings)
    grade = h.grade(q07)
    assert grade.outcome == "graded" and route.call_count == 2 and grade.attempts == 2
    second = sent(route, 1)["messages"]
    assert second[-2] == {"role": "assistant", "content": '{"key_points": {"forward-chaining": '}
    assert second[-1]["role"] == "user" and "not valid JSON" in second[-1]["content"]
    assert sent(route, 0)["messages"] == second[:-2], "the re-ask extends the same conversation"
    assert h.kinds == ["invalid_reply"]


@respx.mock
def test_wrong_shape_is_reasked_naming_the_missing_point(llm_settings, q07):
    bad = reply_for(q07)
    del bad["key_points"]["window-choice"]
    route = respx.post(CHAT_URL).mock(side_effect=[ok(bad), ok(reply_for(q07))])
    assert Harness(llm_settings).grade(q07).outcome == "graded"
    assert "window-choice" in sent(route, 1)["messages"][-1]["content"]


@respx.mock
def test_malformed_every_time_is_grader_error_with_raw_reply(llm_settings, q07):
    route = respx.post(CHAT_URL).mock(return_value=ok("I think this answer deserves 100/100!"))
    h = Harness(llm_settings)
    grade = h.grade(q07)
    assert grade.outcome == "grader_error" and grade.score is None
    assert grade.raw_reply == "I think this answer deserves 100/100!"
    assert route.call_count == 3 and grade.attempts == 3  # the ask and two re-asks
    assert h.kinds == ["invalid_reply", "invalid_reply"]


# --------------------------------------------------------------------------- fatal errors


@pytest.mark.parametrize("status, words", [(401, "OPENAI_API_KEY"), (403, "OPENAI_API_KEY"), (404, "MLGRADE_MODEL")])
@respx.mock
def test_auth_and_unknown_model_end_at_once_and_are_fatal(llm_settings, q07, status, words):
    route = respx.post(CHAT_URL).mock(return_value=error(status, "nope"))
    h = Harness(llm_settings)
    with pytest.raises(GraderFailure) as info:
        h.assess(q07)
    assert info.value.fatal is True and words in info.value.reason and info.value.attempts == 1
    assert route.call_count == 1 and h.sleep.waits == [] and h.events == []
    grade = h.grade(q07)
    assert grade.outcome == "grader_error" and grade.score is None and words in grade.error


@respx.mock
def test_unexplained_bad_request_is_not_retried(llm_settings, q07):
    route = respx.post(CHAT_URL).mock(return_value=error(400, "This model's maximum context length is 128 tokens"))
    h = Harness(llm_settings)
    with pytest.raises(GraderFailure) as info:
        h.assess(q07)
    assert route.call_count == 1 and info.value.fatal is False and "context length" in info.value.reason


# --------------------------------------------------------------------------- capabilities


def _format_of(body):
    return (body.get("response_format") or {}).get("type", "plain")


@respx.mock
def test_json_schema_rejected_falls_back_to_json_object_and_is_cached(llm_settings, q07):
    def server(request):
        body = json.loads(request.content)
        if _format_of(body) == "json_schema":
            return error(400, 'response_format type must be one of "text" or "json_object"')
        return ok(reply_for(q07))

    route = respx.post(CHAT_URL).mock(side_effect=server)
    first = Harness(llm_settings).grade(q07)
    assert first.outcome == "graded" and [_format_of(sent(route, i)) for i in range(2)] == ["json_schema", "json_object"]
    fallback = sent(route, 1)
    assert fallback["response_format"]["schema"]["properties"]["key_points"]["required"][0] == "forward-chaining"
    assert "JSON Schema" in fallback["messages"][0]["content"]  # the schema is in the prompt as well

    with Store.for_settings(llm_settings) as store:
        assert store.capabilities_get(BASE_URL, "gpt-4.1-mini")["response_format"] == "json_object"
    second = Harness(llm_settings).grade(q07)  # a new grader, as in a new process
    assert second.outcome == "graded" and route.call_count == 3 and _format_of(sent(route)) == "json_object"


@respx.mock
def test_no_format_support_at_all_falls_back_to_plain_json_in_prompt(llm_settings, q07):
    def server(request):
        body = json.loads(request.content)
        if "response_format" in body:
            return error(400, "Unrecognized request argument supplied: response_format")
        return ok("Here you go:\n" + json.dumps(reply_for(q07)))

    route = respx.post(CHAT_URL).mock(side_effect=server)
    h = Harness(llm_settings)
    assert h.grade(q07).outcome == "graded" and route.call_count == 3
    assert h.grader.capabilities["response_format"] == "plain"
    assert "JSON Schema" in sent(route)["messages"][0]["content"]


@respx.mock
def test_seed_and_temperature_rejections_are_dropped_and_remembered(llm_settings, q07):
    def server(request):
        body = json.loads(request.content)
        if "seed" in body:
            return error(400, "Unrecognized request argument supplied: seed")
        if "temperature" in body:
            return error(400, "Unsupported value: 'temperature' does not support 0 with this model.")
        return ok(reply_for(q07))

    route = respx.post(CHAT_URL).mock(side_effect=server)
    assert Harness(llm_settings).grade(q07).outcome == "graded" and route.call_count == 3
    assert Harness(llm_settings).grade(q07).outcome == "graded" and route.call_count == 4
    last = sent(route)
    assert "seed" not in last and "temperature" not in last and _format_of(last) == "json_schema"


@respx.mock
def test_no_cache_capabilities_redetects(q07):
    with Store.for_settings(load_settings()) as store:
        store.capabilities_put(BASE_URL, "gpt-4.1-mini", {"response_format": "plain", "seed": False, "temperature": True})
    route = respx.post(CHAT_URL).mock(return_value=ok(reply_for(q07)))
    Harness(load_settings(base_url=BASE_URL, model="gpt-4.1-mini", grader="llm")).grade(q07)
    assert _format_of(sent(route)) == "plain"  # the cached record was used
    fresh = load_settings(base_url=BASE_URL, model="gpt-4.1-mini", grader="llm", cache_capabilities=False)
    Harness(fresh).grade(q07)
    assert _format_of(sent(route)) == "json_schema" and "seed" in sent(route)
    with Store.for_settings(fresh) as store:  # and the fresh finding replaced the old record
        assert store.capabilities_get(BASE_URL, "gpt-4.1-mini")["response_format"] == "json_schema"


@respx.mock
def test_llama_cpp_style_500_refusal_of_json_schema_falls_back_without_retrying(llm_settings, q07):
    """llama-cpp-python answers a response_format it cannot validate with HTTP 500, not 400."""
    refusal = ("1 validation error: {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
               "'msg': \"Input should be 'text' or 'json_object'\"}")

    def server(request):
        return error(500, refusal) if _format_of(json.loads(request.content)) == "json_schema" else ok(reply_for(q07))

    route = respx.post(CHAT_URL).mock(side_effect=server)
    h = Harness(llm_settings)
    assert h.grade(q07).outcome == "graded"
    assert [_format_of(sent(route, i)) for i in range(route.call_count)] == ["json_schema", "json_object"]
    assert h.sleep.waits == []  # a refusal is not a transient server error


@respx.mock
def test_plain_500_is_still_retried(llm_settings, q07):
    route = respx.post(CHAT_URL).mock(side_effect=[error(500, "internal error"), ok(reply_for(q07))])
    assert Harness(llm_settings).grade(q07).outcome == "graded" and route.call_count == 2


@respx.mock
def test_reply_length_is_capped_and_the_parameter_name_adapts(q07):
    settings = load_settings(base_url=BASE_URL, model="gpt-4.1-mini", grader="llm", max_tokens=321)

    def server(request):
        if "max_tokens" in json.loads(request.content):
            return error(400, "Unsupported parameter: 'max_tokens' is not supported with this model. "
                              "Use 'max_completion_tokens' instead.")
        return ok(reply_for(q07))

    route = respx.post(CHAT_URL).mock(side_effect=server)
    assert Harness(settings).grade(q07).outcome == "graded"
    assert sent(route, 0)["max_tokens"] == 321 and sent(route, 1)["max_completion_tokens"] == 321
    with Store.for_settings(settings) as store:
        assert store.capabilities_get(BASE_URL, "gpt-4.1-mini")["max_tokens_param"] == "max_completion_tokens"


def test_raw_newlines_inside_json_strings_are_accepted(q07):
    from mlgrade.graders.llm import grading_model
    from mlgrade.graders.structured import parse_json_reply

    text = json.dumps(reply_for(q07)).replace('"clear"', '"clear\nand concise"')
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)  # a raw newline inside a string is invalid strict JSON
    parsed = parse_json_reply(grading_model(q07), text)
    assert parsed.strengths == ["clear\nand concise"]


@respx.mock
def test_detect_capabilities_probe_and_cache(llm_settings):
    route = respx.post(CHAT_URL).mock(side_effect=lambda r: error(400, "json_schema is not supported")
                                      if _format_of(json.loads(r.content)) == "json_schema" else ok('{"ok": true}'))
    with Store.for_settings(llm_settings) as store:
        caps = asyncio.run(detect_capabilities(llm_settings, store))
        assert caps == {"response_format": "json_object", "seed": True, "temperature": True,
                        "max_tokens_param": "max_tokens"}
        assert asyncio.run(detect_capabilities(llm_settings, store)) == caps and route.call_count == 2  # cached
        asyncio.run(detect_capabilities(llm_settings, store, refresh=True))
        assert route.call_count == 4


# --------------------------------------------------------------------------- the reusable machinery


class Derived(BaseModel):
    points: list[str]
    essential: bool


@respx.mock
def test_call_structured_for_any_model_with_reask(llm_settings):
    route = respx.post(CHAT_URL).mock(side_effect=[ok('{"points": "not a list", "essential": true}'),
                                                   ok('{"points": ["a", "b"], "essential": false}')])
    endpoint = Endpoint(llm_settings, policy=RetryPolicy(sleep=FakeSleep()))
    result = asyncio.run(call_structured(endpoint, [{"role": "system", "content": "Derive."},
                                                    {"role": "user", "content": "text"}], Derived, schema_name="derive"))
    assert result.value == Derived(points=["a", "b"], essential=False) and result.attempts == 2
    assert sent(route, 0)["response_format"]["json_schema"]["name"] == "derive"
    assert "points" in sent(route, 1)["messages"][-1]["content"]


def test_retry_after_header_forms():
    from mlgrade.graders.client import parse_retry_after

    assert parse_retry_after(httpx.Headers({"retry-after": "2"})) == 2.0
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "1500"})) == 1.5
    assert parse_retry_after(httpx.Headers({})) is None
    assert parse_retry_after(httpx.Headers({"retry-after": "soon"})) is None
    assert 0 <= parse_retry_after(httpx.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) < 1

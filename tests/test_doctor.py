"""`mlgrade doctor`: configuration with sources, the live check (respx-mocked endpoint), verdicts."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from mlgrade.config import load_settings
from mlgrade.doctor import run_doctor

BASE = "http://llm.test/v1"
SECRET = "sk-test-secret-do-not-print-1234"
PROBE_REPLY = {"id": "c1", "object": "chat.completion", "created": 0, "model": "tiny",
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": '{"ok": true, "word": "ready"}'}}],
               "usage": {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39}}
MODELS = {"object": "list", "data": [{"id": "tiny", "object": "model"}]}


def _llama_like_chat(request: httpx.Request) -> httpx.Response:
    """Refuses json_schema (as llama.cpp-style servers do with a 400), accepts json_object."""
    body = json.loads(request.content)
    if body.get("response_format", {}).get("type") == "json_schema":
        return httpx.Response(400, json={"error": {"message": "response_format type json_schema is not supported",
                                                   "type": "invalid_request_error"}})
    return httpx.Response(200, json=PROBE_REPLY)


@pytest.fixture
def endpoint_env(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", BASE)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("MLGRADE_MODEL", "tiny")


def test_offline_mode_makes_no_request_and_says_so(cli):
    with respx.mock(assert_all_called=False) as mock:  # any request would be unmatched and raise
        result = cli(["doctor", "--json"])
        assert not mock.calls
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["mode"] == "offline" and report["ok"] is True and report["checks"] == []
    assert "offline mode" in report["verdict"] and "OPENAI_API_KEY" in report["verdict"]
    assert {r["name"]: r["source"] for r in report["config"]}["model"] == "default"


def test_config_sources_env_dotenv_flag(cli, home, monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("MLGRADE_MODEL=from-dotenv\nMLGRADE_TIMEOUT=12\n")
    monkeypatch.setenv("MLGRADE_GRADER", "offline")
    report = json.loads(cli(["doctor", "--json", "--model", "from-flag"]).stdout)
    rows = {r["name"]: r for r in report["config"]}
    assert rows["model"] == {"name": "model", "value": "from-flag", "source": "flag"}
    assert rows["timeout"]["value"] == 12.0 and rows["timeout"]["source"] == ".env MLGRADE_TIMEOUT"
    assert rows["grader"]["source"] == "env MLGRADE_GRADER"
    assert rows["home"]["value"] == str(home)
    assert "offline grader selected" in report["verdict"]


def test_store_location_and_schema_version(cli, home):
    from mlgrade.store import SCHEMA_VERSION, Store

    report = json.loads(cli(["doctor", "--json", "--offline"]).stdout)
    assert report["store"]["exists"] is False and report["store"]["schema_version"] is None
    assert not (home / "mlgrade.db").exists(), "doctor must not create the store just to look at it"
    Store(home / "mlgrade.db").close()
    report = json.loads(cli(["doctor", "--json", "--offline"]).stdout)
    assert report["store"] == {"path": str(home / "mlgrade.db"), "exists": True, "schema_version": SCHEMA_VERSION,
                               "expected_schema_version": SCHEMA_VERSION, "ok": True, "problem": None, "damaged": False}


def test_a_store_from_a_newer_mlgrade_is_a_config_error(cli, home):
    from mlgrade.store import Store

    with Store(home / "mlgrade.db") as store:
        store.db.execute("INSERT INTO schema_version VALUES (999, 'future', 'now')")
    result = cli(["doctor", "--json", "--offline"])
    assert result.exit_code == 2
    assert "newer than this mlgrade" in json.loads(result.stdout)["verdict"]


@respx.mock
def test_401_says_check_the_key_and_never_prints_it(cli, endpoint_env):
    respx.get(f"{BASE}/models").mock(return_value=httpx.Response(401, json={"error": {"message": "Incorrect API key"}}))
    chat = respx.post(f"{BASE}/chat/completions").mock(return_value=httpx.Response(401, json={}))
    result = cli(["doctor"])
    assert result.exit_code == 1
    assert "401 from the endpoint: check OPENAI_API_KEY" in " ".join(result.output.split())
    assert SECRET not in result.output and SECRET[:12] not in result.output
    assert not chat.called, "after a 401 on /models the chat requests would only repeat it"
    as_json = cli(["doctor", "--json"])
    assert SECRET not in as_json.stdout
    rows = {r["name"]: r for r in json.loads(as_json.stdout)["config"]}
    assert rows["api_key"] == {"name": "api_key", "value": "set", "source": "env OPENAI_API_KEY"}


@respx.mock
def test_success_detects_json_object_caches_it_and_times_each_step(endpoint_env, home):
    respx.get(f"{BASE}/models").mock(return_value=httpx.Response(200, json=MODELS))
    chat = respx.post(f"{BASE}/chat/completions").mock(side_effect=_llama_like_chat)
    report = run_doctor(load_settings())
    assert report.ok and report.exit_code == 0, report.verdict
    assert report.verdict.startswith("ready: grading with tiny") and "json_object" in report.verdict
    assert report.capabilities["response_format"] == "json_object" and report.capabilities_source == "detected"
    assert [c.name for c in report.checks] == ["models", "capabilities", "structured request"]
    assert all(c.status == "ok" and c.latency_ms is not None for c in report.checks)
    # the learnt capability is in the store: a second run sends json_object straight away
    from mlgrade.store import Store

    with Store(home / "mlgrade.db") as store:
        assert store.capabilities_get(BASE, "tiny")["response_format"] == "json_object"
    calls_before = chat.call_count
    again = run_doctor(load_settings())
    assert again.capabilities_source == "cached"
    assert chat.call_count == calls_before + 1  # only the tiny structured request
    assert json.loads(chat.calls.last.request.content)["response_format"]["type"] == "json_object"


@respx.mock
def test_refresh_redetects(endpoint_env):
    respx.get(f"{BASE}/models").mock(return_value=httpx.Response(200, json=MODELS))
    respx.post(f"{BASE}/chat/completions").mock(side_effect=_llama_like_chat)
    run_doctor(load_settings())
    assert run_doctor(load_settings(), refresh=True).capabilities_source == "detected"


@respx.mock
def test_unlisted_model_is_a_note_not_a_failure(endpoint_env, monkeypatch):
    monkeypatch.setenv("MLGRADE_MODEL", "other")
    respx.get(f"{BASE}/models").mock(return_value=httpx.Response(200, json=MODELS))
    respx.post(f"{BASE}/chat/completions").mock(side_effect=_llama_like_chat)
    report = run_doctor(load_settings())
    assert report.ok and "'other' is not listed" in report.verdict
    # issue 26: and what to set instead
    served = MODELS["data"][0]["id"]
    assert f"set MLGRADE_MODEL={served}" in report.verdict


@respx.mock
def test_invalid_json_from_a_small_model_is_reported(endpoint_env):
    respx.get(f"{BASE}/models").mock(return_value=httpx.Response(200, json=MODELS))
    garbled = {**PROBE_REPLY, "choices": [{"index": 0, "finish_reason": "stop",
                                           "message": {"role": "assistant", "content": "Sure! Here is JSON: ok"}}]}
    respx.post(f"{BASE}/chat/completions").mock(return_value=httpx.Response(200, json=garbled))
    report = run_doctor(load_settings())
    assert not report.ok and report.exit_code == 1
    assert "did not return valid JSON" in report.verdict


def test_connection_refused(monkeypatch):
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    report = run_doctor(load_settings())
    assert report.exit_code == 1 and report.verdict.startswith("nothing answers at http://127.0.0.1:")
    assert "start the local server" in report.verdict
    assert [c.name for c in report.checks] == ["models"]


@respx.mock
def test_no_network_with_an_openai_key_points_at_the_network_not_a_server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    respx.route(host="api.openai.com").mock(side_effect=httpx.ConnectError("[Errno -3] Temporary failure in name resolution"))
    report = run_doctor(load_settings())
    assert report.exit_code == 1
    assert "OpenAI API" in report.verdict and "network" in report.verdict and "proxy" in report.verdict
    assert "start" not in report.verdict and "server" not in report.verdict


@respx.mock
def test_unreachable_remote_endpoint_points_at_the_address_and_network(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "https://llm.example.net/v1")
    respx.route(host="llm.example.net").mock(side_effect=httpx.ConnectError("connection refused"))
    report = run_doctor(load_settings())
    assert report.exit_code == 1 and "OPENAI_BASE_URL" in report.verdict and "network" in report.verdict
    assert "start the local server" not in report.verdict


def test_llm_grader_without_key_or_url_is_a_config_error(cli):
    result = cli(["doctor", "--grader", "llm"])
    assert result.exit_code == 2
    assert "no OPENAI_API_KEY or OPENAI_BASE_URL" in " ".join(result.output.split())


def test_offline_flag_skips_the_live_check(cli, endpoint_env):
    with respx.mock(assert_all_called=False) as mock:
        report = json.loads(cli(["doctor", "--offline", "--json"]).stdout)
        assert not mock.calls
    assert report["mode"] == "llm" and report["checks"] == [] and "live check skipped" in report["verdict"]

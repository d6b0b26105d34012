"""A dead local endpoint fails fast: a refused connection gets one quick retry, not five with
backoff, and the message names the URL and the reason once (issue 17)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys

import httpx
import respx

from llm_helpers import CHAT_URL, FakeSleep, ok, reply_for
from mlgrade.config import load_settings
from mlgrade.grading import agrade_rubric
from mlgrade.graders.llm import LLMGrader, RetryPolicy


def _free_port() -> int:
    with socket.socket() as s:  # free a moment ago: nothing listens there now
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@respx.mock
def test_refused_connection_gets_one_quick_retry(llm_settings, q07):
    route = respx.post(CHAT_URL).mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
    sleep = FakeSleep()
    grader = LLMGrader(llm_settings, policy=RetryPolicy(sleep=sleep))
    grade = asyncio.run(agrade_rubric(q07, "Shuffled k-fold leaks the future.", settings=llm_settings, grader=grader))
    assert grade.outcome == "grader_error" and route.call_count == 2 and grade.attempts == 2
    assert sleep.waits == [RetryPolicy().refused_wait] and RetryPolicy().refused_wait <= 0.5
    assert grade.error == f"could not connect to {CHAT_URL}: connection refused"


@respx.mock
def test_refused_then_listening_still_grades(llm_settings, q07):
    respx.post(CHAT_URL).mock(side_effect=[httpx.ConnectError("Connection refused"), ok(reply_for(q07))])
    grader = LLMGrader(llm_settings, policy=RetryPolicy(sleep=FakeSleep()))
    grade = asyncio.run(agrade_rubric(q07, "Shuffled k-fold leaks the future.", settings=llm_settings, grader=grader))
    assert grade.outcome == "graded" and grade.attempts == 2


@respx.mock
def test_other_connection_errors_keep_the_full_backoff(llm_settings, q07):
    route = respx.post(CHAT_URL).mock(side_effect=httpx.ConnectError("Temporary failure in name resolution"))
    sleep = FakeSleep()
    grader = LLMGrader(llm_settings, policy=RetryPolicy(sleep=sleep, max_attempts=4))
    grade = asyncio.run(agrade_rubric(q07, "Shuffled k-fold leaks the future.", settings=llm_settings, grader=grader))
    assert route.call_count == 4 and len(sleep.waits) == 3 and grade.outcome == "grader_error"


def test_grade_against_a_dead_local_port_says_it_once(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/v1"
    env = {**os.environ, "OPENAI_BASE_URL": url, "MLGRADE_GRADER": "llm", "COLUMNS": "200"}
    env.pop("OPENAI_API_KEY", None)
    done = subprocess.run([sys.executable, "-m", "mlgrade", "grade", "q07", "Shuffled k-fold leaks the future."],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 1, done.stderr
    out = done.stdout + done.stderr
    assert out.count("connection refused") == 1 + done.stderr.count("note: connection refused")
    assert f"{url}/chat/completions" in done.stdout and "gave up" not in out
    assert "2 attempt(s)" in done.stdout
    js = subprocess.run([sys.executable, "-m", "mlgrade", "grade", "q07", "Shuffled k-fold leaks the future.", "--json"],
                        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    data = json.loads(js.stdout)
    assert data["outcome"] == "grader_error" and data["attempts"] == 2
    assert data["error"] == f"could not connect to {url}/chat/completions: connection refused"


def test_batch_against_a_dead_local_port_stops_at_once(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{_free_port()}/v1")
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"id": str(i), "question_id": "q07", "answer": f"Answer {i}: shuffling leaks."})
                               + "\n" for i in range(20)), encoding="utf-8")
    result = cli(["batch", answers, "--out", tmp_path / "results.jsonl", "--grader", "llm", "-c", "1"])
    assert result.exit_code != 0
    assert "batch stopped: could not connect to" in result.stderr and "connection refused" in result.stderr
    written = (tmp_path / "results.jsonl").read_text().splitlines() if (tmp_path / "results.jsonl").exists() else []
    assert written == []  # nothing is recorded as an error: a rerun grades them all once the server is up

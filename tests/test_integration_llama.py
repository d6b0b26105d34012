"""mlgrade against a real OpenAI-compatible server: llama-cpp-python's server with SmolLM2-135M.

What a 135M model on CPU proves: the endpoint's quirks are handled (json_schema refused,
json_object + schema accepted), the capability is detected once and cached, every item ends
`graded` or `grader_error`, evidence the model invents is flagged, and nothing crashes. It does
not prove grading quality; the model is far too small for that.

Skipped locally when the server packages are missing; `.ci/run` sets MLGRADE_REQUIRE_INTEGRATION=1
so a missing server fails there. Runtime is kept small: few items, capped output tokens.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from llama_server import llama_server  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration

LATENCIES: list[tuple[str, float]] = []  # (what, seconds), printed at the end of the module

SMALL_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}, "n": {"type": "integer"}},
                "required": ["answer", "n"], "additionalProperties": False}
MESSAGES = [{"role": "user", "content": "Reply in JSON: answer is the capital of France, n is 3."}]


def _post(server, body: dict) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    resp = httpx.post(f"{server.base_url}/chat/completions", json={"model": server.model, **body}, timeout=120)
    return resp, time.perf_counter() - started


@pytest.fixture(scope="module", autouse=True)
def _print_latencies(pytestconfig):
    """Print every recorded latency in the pytest output (without -s), for the CI log."""
    yield
    reporter = pytestconfig.pluginmanager.getplugin("terminalreporter")
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    if not LATENCIES or reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line("llama.cpp request latencies (SmolLM2-135M Q4_1, CPU):")
        for what, secs in LATENCIES:
            reporter.write_line(f"  {what}: {secs * 1000:.0f} ms")


def test_what_the_server_accepts(llama_server):  # noqa: F811
    """The raw behaviour mlgrade's capability detection must cope with (llama-cpp-python 0.3.x)."""
    # json_schema is refused by the server's request validation - as HTTP 500, not 400.
    resp, secs = _post(llama_server, {"messages": MESSAGES, "max_tokens": 20, "temperature": 0,
                                      "response_format": {"type": "json_schema",
                                                          "json_schema": {"name": "r", "strict": True, "schema": SMALL_SCHEMA}}})
    LATENCIES.append(("raw json_schema (refused)", secs))
    assert resp.status_code in (400, 422, 500), resp.text
    assert "json_object" in resp.text  # "Input should be 'text' or 'json_object'"

    # json_object with a schema is enforced by a grammar: the reply parses and fits the schema.
    resp, secs = _post(llama_server, {"messages": MESSAGES, "max_tokens": 40, "temperature": 0, "seed": 1,
                                      "response_format": {"type": "json_object", "schema": SMALL_SCHEMA}})
    LATENCIES.append(("raw json_object+schema", secs))
    assert resp.status_code == 200, resp.text
    reply = json.loads(resp.json()["choices"][0]["message"]["content"], strict=False)
    assert set(reply) == {"answer", "n"} and isinstance(reply["n"], int)


def test_server_honours_seed(llama_server):  # noqa: F811
    body = {"messages": [{"role": "user", "content": "One sentence about cats."}], "max_tokens": 16,
            "temperature": 1.0, "seed": 1234}
    first, secs = _post(llama_server, body)
    LATENCIES.append(("raw plain, 16 tokens", secs))
    second, _ = _post(llama_server, body)
    assert first.status_code == second.status_code == 200
    text = [r.json()["choices"][0]["message"]["content"] for r in (first, second)]
    assert text[0] == text[1], "same seed at temperature 1 gave different text"


def test_the_server_is_stopped_when_a_test_fails(tmp_path):
    """Run a failing test that uses the fixture in a child pytest, then check the server is gone."""
    pid_file = tmp_path / "server.pid"
    test_file = tmp_path / "test_fails.py"
    test_file.write_text(textwrap.dedent(f"""
        from llama_server import llama_server

        def test_fails(llama_server):
            open({str(pid_file)!r}, "w").write(str(llama_server.proc.pid))
            assert False, "deliberate failure"
    """))
    tests_dir = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tests_dir), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    if "llama.cpp integration:" in result.stdout and "deliberate failure" not in result.stdout:
        pytest.fail(f"the child could not start the server:\n{result.stdout[-2000:]}")
    assert result.returncode == 1 and "deliberate failure" in result.stdout, result.stdout[-2000:]
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# --------------------------------------------------------------------------- mlgrade against the server

QUESTION = "q03"  # k-nearest neighbours: among the shortest rubrics, so the replies stay short
ANSWERS = {
    "good": ("k-nearest neighbours is a supervised method: to classify a point it finds the k closest training "
             "points by a distance such as Euclidean distance and takes a majority vote of their labels. "
             "Features must be scaled, and a small k overfits while a large k underfits."),
    "weak": "KNN groups the data into k clusters by moving centroids until they stop changing.",
}
# A 135M model on two CPU cores: cap the reply (a valid verdict on q03's 6 key points takes ~370
# tokens; a rambling one is cut off, re-asked twice, then ends as grader_error) and allow a slow
# first prompt evaluation. MLGRADE_MAX_TOKENS bounds every request mlgrade sends.
RUN_TIMEOUT_S = 900


def _env(server, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MLGRADE_"))}
    env.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-dummy-local", MLGRADE_MODEL=server.model,
               MLGRADE_HOME=str(home), MLGRADE_MAX_TOKENS="500", MLGRADE_TIMEOUT="300", NO_COLOR="1")
    return env


def _mlgrade(args: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "mlgrade", *args], env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=RUN_TIMEOUT_S)
    return result, time.perf_counter() - started


def _assert_no_crash(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode in (0, 1), f"exit {result.returncode}\nstdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}"


def _assert_evidence_policed(grade: dict, answer: str) -> int:
    """Whatever the model claimed, code decided: a quote not in the answer is unverified and the
    point earns nothing. Returns how many judgments were flagged."""
    from mlgrade.evidence import quote_found

    flagged = 0
    for j in grade["judgments"]:
        if j["claimed_status"] in (None, "missing"):
            continue
        really_there = bool(j["evidence"].strip()) and quote_found(j["evidence"], answer)
        assert j["verified"] == really_there, j
        if not really_there:
            flagged += 1
            assert j["status"] != j["claimed_status"] or j["claimed_status"] == "missing", j
            assert j["status"] == "missing", j
    return flagged


def _assert_capability_cached(home: Path, server) -> dict:
    from mlgrade.store import Store

    with Store(home / "mlgrade.db") as store:
        caps = store.capabilities_get(server.base_url, server.model)
    assert caps is not None, "the detected capabilities were not cached"
    # llama-cpp-python refuses json_schema (HTTP 500, pydantic literal_error) and enforces
    # {"type": "json_object", "schema": …} with a grammar; it accepts seed and temperature.
    assert caps["response_format"] == "json_object", caps
    assert caps["seed"] is True and caps["temperature"] is True, caps
    return caps


def test_grade_against_the_server(llama_server, tmp_path):  # noqa: F811
    home = tmp_path / "home"
    env = _env(llama_server, home)
    result, secs = _mlgrade(["grade", QUESTION, ANSWERS["good"], "--json"], env, tmp_path)
    _assert_no_crash(result)
    grade = json.loads(result.stdout)
    why = f": {' '.join((grade.get('error') or '').split())[:120]}" if grade["outcome"] != "graded" else ""
    LATENCIES.append((f"mlgrade grade {QUESTION} (CLI, {grade['attempts']} request(s), outcome {grade['outcome']}{why})", secs))
    assert grade["outcome"] in ("graded", "grader_error"), grade
    assert (result.returncode == 0) == (grade["outcome"] == "graded")
    if grade["outcome"] == "graded":
        assert grade["grader"] == "llm" and 0 <= grade["score"] <= 100
        _assert_evidence_policed(grade, ANSWERS["good"])
    else:
        assert grade["score"] is None and grade["error"], grade
    _assert_capability_cached(home, llama_server)


def test_doctor_against_the_server(llama_server, tmp_path):  # noqa: F811
    env = _env(llama_server, tmp_path / "home")
    result, secs = _mlgrade(["doctor", "--json", "--refresh"], env, tmp_path)
    LATENCIES.append(("mlgrade doctor --refresh (CLI)", secs))
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    for check in report["checks"]:
        LATENCIES.append((f"doctor step {check['name']} ({check['status']})", (check["latency_ms"] or 0) / 1000))
    assert report["mode"] == "llm" and report["key_set"] is True
    assert "sk-dummy-local" not in result.stdout
    assert report["capabilities"] == {"response_format": "json_object", "seed": True, "temperature": True,
                                      "max_tokens_param": "max_tokens"}, report
    assert [c["name"] for c in report["checks"]] == ["models", "capabilities", "structured request"]
    assert report["checks"][0]["status"] == "ok" and report["checks"][1]["status"] == "ok"
    # the tiny structured request may or may not validate with a 135M model; doctor must say which
    assert report["checks"][2]["status"] in ("ok", "warn")
    assert report["ok"] == (report["checks"][2]["status"] == "ok"), report["verdict"]
    assert report["capabilities_source"] == "detected"

    # a second process finds the capability in the store and sends json_object straight away
    again, secs = _mlgrade(["doctor", "--json"], env, tmp_path)
    LATENCIES.append(("mlgrade doctor, capability cached (CLI)", secs))
    cached = json.loads(again.stdout)
    assert cached["capabilities_source"] == "cached" and cached["capabilities"] == report["capabilities"]


def test_batch_against_the_server(llama_server, tmp_path):  # noqa: F811
    home = tmp_path / "home"
    env = _env(llama_server, home)
    rows = [{"id": name, "question_id": QUESTION, "answer": text} for name, text in ANSWERS.items()]
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "results.jsonl"
    result, secs = _mlgrade(["batch", str(answers), "--out", str(out), "--concurrency", "1", "--json"], env, tmp_path)
    _assert_no_crash(result)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == len(rows), lines
    outcomes = {}
    for line, row in zip(sorted(lines, key=lambda x: x["id"]), sorted(rows, key=lambda x: x["id"])):
        outcomes[line["id"]] = line["outcome"]
        assert line["outcome"] in ("graded", "grader_error"), line
        if line["outcome"] == "graded":
            _assert_evidence_policed(line, row["answer"])
        why = f": {' '.join((line.get('error') or '').split())[:120]}" if line["outcome"] != "graded" else ""
        LATENCIES.append((f"batch item {line['id']} ({line.get('attempts')} request(s), {line['outcome']}{why})",
                          (line.get("latency_ms") or 0) / 1000))
    LATENCIES.append((f"mlgrade batch, {len(rows)} answers (CLI total)", secs))
    assert (result.returncode == 0) == all(o == "graded" for o in outcomes.values()), result.stdout[-2000:]
    _assert_capability_cached(home, llama_server)


def test_builtin_benchmark_says_the_small_model_is_not_to_be_trusted(llama_server, tmp_path):  # noqa: F811
    """`eval --builtin` on a few answers: SmolLM2-135M does not beat the offline grader, and the
    verdict says so (true today; a model this small cannot follow a rubric)."""
    home = tmp_path / "home"
    # one answer, replies capped shorter than elsewhere, no code runs: the CI time budget (on a loaded
    # 2-core machine the model made 3.9 tokens/s: three asks of 250 tokens took 3m40s). A reply cut
    # off at the cap ends as grader_error, which the verdict counts as a disagreement.
    env = {**_env(llama_server, home), "MLGRADE_MAX_TOKENS": "250", "MLGRADE_EXEC": "0"}
    result, secs = _mlgrade(["eval", "--builtin", "--sample", "1", "--yes", "--json", "--concurrency", "1"], env, tmp_path)
    _assert_no_crash(result)
    LATENCIES.append(("mlgrade eval --builtin --sample 1 (CLI total)", secs))
    data = json.loads(result.stdout)
    llm = data["runs"][0]
    assert (llm["grader"], llm["model"], llm["answers"]) == ("llm", llama_server.model, 1), llm
    assert "Do not trust it over the offline grader" in data["verdict"], data["verdict"]
    assert data["verdict"].startswith(f"{llama_server.model} agrees with the experts "), data["verdict"]
    doctor, _ = _mlgrade(["doctor", "--offline", "--json"], env, tmp_path)
    line = json.loads(doctor.stdout)["benchmark"]["line"]
    assert line.startswith(f"{llama_server.model}: measured ") and " on 1 expert-graded answers" in line, line

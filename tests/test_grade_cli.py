"""`mlgrade grade` end to end against the loopback fake OpenAI server: the JSON contract, the
terminal view, exit codes, hostile input and injected failures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fake_openai_server import FakeOpenAIServer

GOOD = ("Use forward chaining (TimeSeriesSplit): train on the past and test on the block that follows. "
        "Shuffled k-fold leaks the future because observations are autocorrelated, so the estimate is optimistic. "
        "Leave a gap between train and test when features use lags.")
CONTRACT = {"question_id", "outcome", "score", "band", "judgments", "misconceptions", "strengths", "improvements",
            "follow_up", "error", "grader", "model", "usage", "latency_ms", "cost_usd", "rubric_hash", "prompt_hash",
            "attempts"}


@pytest.fixture
def server(monkeypatch):
    srv = FakeOpenAIServer(retry_after=0.01).start()
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
    monkeypatch.setenv("MLGRADE_MODEL", "gpt-4.1-mini")
    yield srv
    srv.stop()


def test_json_contract(cli, server):
    result = cli(["grade", "q07", GOOD, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert CONTRACT <= set(data)
    assert data["outcome"] == "graded" and data["grader"] == "llm" and 0 <= data["score"] <= 100
    assert data["band"] in {"strong", "adequate", "weak", "poor"} and data["error"] is None
    assert {"key_point", "status", "evidence", "verified", "comment"} <= set(data["judgments"][0])
    assert set(data["usage"]) >= {"input_tokens", "output_tokens", "cached_tokens"} and data["usage"]["input_tokens"] > 0
    assert data["model"] == "gpt-4.1-mini" and data["cost_usd"] > 0 and data["attempts"] == 1
    assert len(server.requests) == 1


def test_terminal_rendering(cli, server):
    result = cli(["grade", "q07", GOOD])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "/100" in out and "✓" in out and "forward-chaining" in out and "Follow-up" in out
    assert "model gpt-4.1-mini" in out and "tokens" in out


def test_answer_from_stdin_and_file(cli, server, tmp_path):
    assert json.loads(cli(["grade", "7", "-", "--json"], input=GOOD).stdout)["outcome"] == "graded"
    path = tmp_path / "answer.md"
    path.write_text(GOOD, encoding="utf-8")
    assert json.loads(cli(["grade", "q7", "--file", path, "--json"]).stdout)["outcome"] == "graded"
    assert len(server.requests) == 2


def test_empty_answer_is_skipped_exit_2_and_no_request(cli, server):
    result = cli(["grade", "q07", "  ", "--json"])
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["outcome"] == "skipped" and data["score"] is None
    plain = cli(["grade", "q07", ""])
    assert plain.exit_code == 2 and "error: empty answer" in plain.stderr
    assert server.requests == []


def test_non_utf8_file_is_a_one_line_error(cli, server, tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9 au lait: forward chaining".encode("latin-1"))
    result = cli(["grade", "q07", "--file", path])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "not valid UTF-8" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert server.requests == []


def test_oversized_answer_is_refused_before_any_call(cli, server, monkeypatch):
    monkeypatch.setenv("MLGRADE_MAX_ANSWER_CHARS", "100")
    result = cli(["grade", "q07", "x" * 101])
    assert result.exit_code == 2 and "over the limit of 100" in result.stderr
    assert server.requests == []


def test_usage_errors(cli, server, tmp_path):
    both = cli(["grade", "q07", "text", "--file", tmp_path / "a.txt"])
    assert both.exit_code == 2 and "not both" in both.stderr
    missing = cli(["grade", "q07", "--file", tmp_path / "missing.txt"])
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    none = cli(["grade", "q07"])
    assert none.exit_code == 2 and "no answer given" in none.stderr
    unknown = cli(["grade", "q99", "text"])
    assert unknown.exit_code == 2 and "unknown question" in unknown.stderr


def test_llm_without_key_or_url_is_a_config_error(cli, monkeypatch):
    result = cli(["grade", "q07", GOOD, "--grader", "llm"])
    assert result.exit_code == 2 and "OPENAI_API_KEY" in result.stderr


def test_auth_failure_is_grader_error_exit_1(cli, server):
    server.script = ["401"]
    result = cli(["grade", "q07", GOOD, "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["outcome"] == "grader_error" and data["score"] is None and "OPENAI_API_KEY" in data["error"]
    assert len(server.requests) == 1
    server.script = ["401"]
    view = cli(["grade", "q07", GOOD])  # the terminal view of a failure: no score anywhere
    assert view.exit_code == 1 and "Grading failed" in view.stdout and "/100" not in view.stdout
    assert len(server.requests) == 2


def test_malformed_always_shows_the_raw_reply(cli, server):
    server.script = ["malformed"] * 3
    result = cli(["grade", "q07", GOOD])
    assert result.exit_code == 1
    assert "Grading failed" in result.stdout and "raw reply" in result.stdout and "/100" not in result.stdout


def test_samples_report_median_and_spread(cli, server):
    result = cli(["grade", "q07", GOOD, "--samples", "3", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["samples"]["n"] == 3 and len(data["samples"]["scores"]) == 3
    assert data["score"] == data["samples"]["median"] and set(data["samples"]["majority"]) >= {"forward-chaining"}
    assert len(server.requests) == 3
    assert "median of 3 samples" in cli(["grade", "q07", GOOD, "--samples", "3"]).stdout  # -n is --limit elsewhere


def test_capability_fallback_through_the_cli(cli, server):
    server.reject_json_schema = True
    assert json.loads(cli(["grade", "q07", GOOD, "--json"]).stdout)["outcome"] == "graded"
    assert [(r.get("response_format") or {}).get("type") for r in server.requests] == ["json_schema", "json_object"]
    cli(["grade", "q07", GOOD, "--json"])
    assert (server.requests[-1]["response_format"] or {})["type"] == "json_object" and len(server.requests) == 3
    cli(["grade", "q07", GOOD, "--json", "--no-cache-capabilities"])
    assert [(r.get("response_format") or {}).get("type") for r in server.requests[3:]] == ["json_schema", "json_object"]


def test_injected_failures_end_graded_or_grader_error_never_a_traceback(cli, monkeypatch):
    with FakeOpenAIServer(p429=0.25, p500=0.2, pmalformed=0.2, retry_after=0.0, rng_seed=7) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        outcomes = []
        for _ in range(12):
            result = cli(["grade", "q07", GOOD, "--json"])
            assert "Traceback" not in result.output
            data = json.loads(result.stdout)
            outcomes.append(data["outcome"])
            if data["outcome"] == "graded":
                assert result.exit_code == 0 and data["score"] is not None
            else:
                assert data["outcome"] == "grader_error" and result.exit_code == 1 and data["score"] is None
        assert 429 in srv.statuses and 500 in srv.statuses  # the faults really were injected
    assert "graded" in outcomes


def test_grade_help_does_not_import_openai():
    code = ("import sys; from typer.testing import CliRunner; from mlgrade.cli import app; "
            "r = CliRunner().invoke(app, ['grade', '--help']); assert r.exit_code == 0, r.output; "
            "assert 'Examples' in r.output; print('openai' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_a_file_name_given_as_the_answer_points_to_file(cli, server, tmp_path, monkeypatch):
    # new-user trial: `grade q24 solution.py` graded the text "solution.py" (0/100, exit 0)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "solution.py").write_text("def can_shift(a, b):\n    return True\n")
    result = cli(["grade", "q24", "solution.py"])
    assert result.exit_code == 2 and "use --file solution.py" in result.stderr, result.output
    assert server.requests == []
    one_word = cli(["grade", "q07", "overfitting", "--json"])  # a one-word answer that is no file is graded
    assert one_word.exit_code == 0 and json.loads(one_word.stdout)["outcome"] == "graded"


def test_grade_attempts_are_in_history_unless_opted_out(cli, settings):
    # issue 26: `mlgrade grade` attempts were not in `history`/`stats`
    from mlgrade.practice import history
    from mlgrade.rubrics import load_rubrics
    from mlgrade.store import Store

    answer = "Use a rolling-origin split: train on the past, validate on the block that follows."
    assert cli(["grade", "q07", answer, "-g", "offline"]).exit_code == 0
    assert cli(["grade", "q07", answer + " Never shuffle.", "-g", "offline", "--no-record"]).exit_code == 0
    assert cli(["grade", "q07", "   ", "-g", "offline"]).exit_code == 2  # skipped: not an attempt
    with Store.for_settings(settings) as store:
        attempts = history.all_attempts(store)
        assert [(a.question_id, a.answer, a.outcome) for a in attempts] == [("q07", answer, "graded")]
        assert history.stats(store, load_rubrics())["attempts"] == 1
    shown = cli(["history", "--question", "q07"])
    assert "No attempts yet" not in shown.output and "q07" in shown.output


def test_a_history_that_cannot_be_written_costs_the_record_not_the_grade(cli, monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("MLGRADE_HOME", str(blocker / "home"))
    result = cli(["grade", "q07", "Train on the past and test on the future block.", "-g", "offline", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["outcome"] == "graded"
    assert "warning: not recorded in your history" in result.stderr


def test_samples_with_the_offline_grader_say_it_is_deterministic(cli):
    # issue 26: `--samples 5` offline printed "median of 5 samples, spread 100–100"
    answer = "Use a rolling-origin split: train on the past, validate on the block that follows."
    result = cli(["grade", "q07", answer, "-g", "offline", "--samples", "5"])
    assert result.exit_code == 0
    assert "samples" not in result.stdout
    assert "note: the offline grader is deterministic: --samples 5 would give 5 identical grades" in result.stderr
    data = json.loads(cli(["grade", "q07", answer, "-g", "offline", "--samples", "3", "--json"]).stdout)
    assert data["outcome"] == "graded" and not data.get("samples")


def test_grade_redirected_to_a_file_has_no_trailing_spaces(cli):
    # issue 26: `grade > file` padded 9 of 56 lines with spaces to the console width
    answer = ("For time series I would not use shuffled k-fold, because it leaks future information into training. "
              "Instead I use a rolling-origin split: train on the past, validate on the block that follows.")
    result = cli(["grade", "q07", answer, "-g", "offline"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) > 20 and "To improve" in result.stdout
    assert [line for line in lines if line != line.rstrip()] == []

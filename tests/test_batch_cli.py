"""`mlgrade batch` from the command line: output, exit codes, resume, dry run, errors."""

from __future__ import annotations

import json

from batch_helpers import answers, read_out, write_jsonl
from fake_openai_server import FakeOpenAIServer


def test_batch_all_graded_exit_0_then_resume_does_nothing(tmp_path, cli):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(6))
    out = tmp_path / "out.jsonl"
    with FakeOpenAIServer() as srv:
        env = {"OPENAI_BASE_URL": srv.base_url}
        res = cli(["batch", inp, "--out", out, "--concurrency", "3"], env=env)
        assert res.exit_code == 0, res.output
        assert "6 written (6 graded" in res.stdout and "q01" in res.stdout
        n = len(srv.requests)
        res = cli(["batch", inp, "--out", out, "--json"], env=env)
        assert res.exit_code == 0 and len(srv.requests) == n
        data = json.loads(res.stdout)
        assert data["already_done"] == 6 and data["run"]["done"] == 0 and data["results"]["total"] == 6
    assert len(read_out(out)) == 6


def test_bad_rows_exit_1_and_are_listed_with_file_and_line(tmp_path, cli):
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"question_id": "q01", "answer": "Labelled and unlabelled data."}\n{oops\n')
    res = cli(["batch", inp, "--out", tmp_path / "out.jsonl", "--grader", "offline"])
    assert res.exit_code == 1
    assert f"{inp}:2: invalid JSON" in res.stderr
    assert [r["outcome"] for r in read_out(tmp_path / "out.jsonl")] == ["skipped", "graded"]


def test_usage_errors_exit_2_with_one_line(tmp_path, cli):
    res = cli(["batch", tmp_path / "missing.jsonl", "--out", tmp_path / "o.jsonl"])
    assert res.exit_code == 2 and res.stderr.startswith("error: ") and res.stderr.count("\n") == 1
    inp = write_jsonl(tmp_path / "in.jsonl", answers(1))
    res = cli(["batch", inp])
    assert res.exit_code == 2 and "--out" in res.stderr
    res = cli(["batch", inp, "--out", tmp_path / "o.jsonl", "--concurrency", "0"])
    assert res.exit_code == 2 and "concurrency" in res.stderr


def test_dry_run_estimates_without_calls(tmp_path, cli):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(10))
    with FakeOpenAIServer() as srv:
        res = cli(["batch", inp, "--out", tmp_path / "o.jsonl", "--dry-run", "--json"],
                  env={"OPENAI_BASE_URL": srv.base_url, "MLGRADE_MODEL": "gpt-4.1-mini"})
        assert srv.requests == []
    assert res.exit_code == 0, res.output
    est = json.loads(res.stdout)["estimate"]
    assert est["items"] == 10 and est["input_tokens"] > 0 and est["cost_usd"] > est["cost_usd_batch_api"] > 0
    assert not (tmp_path / "o.jsonl").exists()


def test_report_command_formats(tmp_path, cli):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(4))
    cli(["batch", inp, "--out", tmp_path / "out.jsonl", "--grader", "offline"])
    md = cli(["report", tmp_path / "out.jsonl"])
    assert md.exit_code == 0 and md.stdout.startswith("# mlgrade report")
    res = cli(["report", tmp_path / "out.jsonl", "--format", "html", "--out", tmp_path / "r.html"])
    assert res.exit_code == 0 and (tmp_path / "r.html").read_text().startswith("<!doctype html>")
    bad = cli(["report", tmp_path / "out.jsonl", "--format", "pdf"])
    assert bad.exit_code == 2 and "unknown report format" in bad.stderr

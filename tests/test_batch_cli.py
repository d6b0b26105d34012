"""`mlgrade batch` from the command line: output, exit codes, resume, dry run, errors."""

from __future__ import annotations

import json

import pytest
import typer
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


@pytest.mark.parametrize("name,text,needle", [
    ("long.csv", 'question_id,"answer\nq05,hello\n', "unreadable CSV header"),
    ("wide.csv", 'Email,"q05\nann,hello\n', "unreadable CSV header"),
    ("short.csv", "question_id,text\nq05,hello\n", "lacks column(s) answer (found: 'question_id', 'text')"),
    ("empty.csv", "", "lacks column(s) question_id, answer"),
    ("map.yaml", "a: 1\n", "expected a YAML list"),
    ("fake.xlsx", "PK\x03\x04", "not an Excel workbook"),
])
def test_an_unreadable_input_is_one_line_before_any_progress(tmp_path, cli, name, text, needle):
    good = write_jsonl(tmp_path / "good.jsonl", answers(2))
    bad = tmp_path / name
    bad.write_text(text)
    out = tmp_path / "o.jsonl"
    res = cli(["batch", good, bad, "--out", out, "--grader", "offline"])
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr.startswith(f"error: {bad}: ") and res.stderr.count("\n") == 1, res.stderr  # no bar drawn
    assert needle in res.stderr and not out.exists()


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


# --------------------------------------------------------------------------- issue 17: Ctrl-C and one rate


def test_ctrl_c_says_how_many_results_are_safe_and_how_to_resume(tmp_path, cli, monkeypatch):
    from mlgrade.batch import engine

    src = tmp_path / "answers.jsonl"
    write_jsonl(src, answers(5))
    out = tmp_path / "results.jsonl"

    def interrupted(inputs, out_path, **kwargs):
        with open(out_path, "w", encoding="utf-8") as fh:
            fh.write('{"id": "1"}\n{"id": "2"}\n{"id": "3"}\n{"id": "4", "partial')  # the last line is torn
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "grade_many", interrupted)
    result = cli(["batch", src, "--out", out, "--grader", "offline", "-c", "4"])
    assert result.exit_code == 130
    assert f"interrupted: 3 results safe in {out}" in result.stderr
    assert f"resume with: mlgrade batch {src} --out {out} --concurrency 4 --grader offline" in result.stderr


def test_the_resume_command_keeps_every_option(tmp_path, cli, monkeypatch):
    # issue 26: the hint dropped --no-cache (and any option but five)
    import shlex

    from mlgrade.batch import engine

    src = tmp_path / "answers.jsonl"
    write_jsonl(src, answers(2))
    out = tmp_path / "results.jsonl"

    def interrupted(inputs, out_path, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "grade_many", interrupted)
    given = ["batch", str(src), "--out", str(out), "--no-cache", "--retry-errors", "-c", "2", "--grader", "offline",
             "--match-threshold", "90", "--rubrics", str(tmp_path)]
    result = cli(given)
    assert result.exit_code == 130
    hint = shlex.split(result.stderr.split("resume with: ")[1].strip())
    assert hint[:4] == ["mlgrade", "batch", str(src), "--out"]
    pairs = {(a, b) for a, b in zip(hint, hint[1:])}
    assert {("--out", str(out)), ("--concurrency", "2"), ("--grader", "offline"), ("--match-threshold", "90"),
            ("--rubrics", str(tmp_path))} <= pairs
    assert "--no-cache" in hint and "--retry-errors" in hint
    assert len(hint) == len(given) + 1  # nothing added, nothing lost ("mlgrade" in front)


def test_ctrl_c_erases_the_progress_bar_rather_than_drawing_it_again():
    # issue 26: the "^C" echo wraps the full-width bar, and its final redraw showed it twice
    from mlgrade.commands.batch_render import ProgressBar

    with pytest.raises(KeyboardInterrupt):
        with ProgressBar() as bar:
            raise KeyboardInterrupt
    assert bar.progress.live.transient
    with ProgressBar() as done:
        pass
    assert not done.progress.live.transient  # a finished run keeps its bar


def test_sigint_during_a_real_batch_keeps_results_and_names_the_resume_command(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    src = tmp_path / "answers.jsonl"
    write_jsonl(src, answers(200))
    out = tmp_path / "results.jsonl"
    # 0.5 s a reply: 200 answers take 50 s at least, so a test process starved by a loaded machine
    # (or a parallel run) still interrupts the batch mid-run rather than after its end
    with FakeOpenAIServer(latency=0.5) as srv:
        env = {**os.environ, "OPENAI_BASE_URL": srv.base_url, "MLGRADE_GRADER": "llm"}
        proc = subprocess.Popen([sys.executable, "-m", "mlgrade", "batch", str(src), "--out", str(out), "-c", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 3):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    kept = sum(1 for line in out.read_text().splitlines(keepends=True) if line.endswith("\n"))
    assert 3 <= kept < 200
    assert f"interrupted: {kept} results safe in {out}" in err and "Traceback" not in err
    assert f"resume with: mlgrade batch {src} --out {out}" in err


def test_progress_bar_and_summary_show_the_same_rate(tmp_path):
    import io
    import time

    from rich.console import Console

    from mlgrade.batch.progress import BatchProgress, BatchSummary
    from mlgrade.commands import batch_render

    now = time.monotonic()
    p = BatchProgress(total=10, done=10, graded=9, skipped=1, calls=4, started=now - 4.0, finished=now)
    assert p.rate == 2.5
    bar = batch_render.ProgressBar()
    bar(p)
    assert bar.progress.tasks[0].fields["rate"] == "2.5"

    from mlgrade.batch.aggregate import aggregate_file

    (tmp_path / "r.jsonl").write_text("")
    summary = BatchSummary(out=str(tmp_path / "r.jsonl"), run=p, wall_s=4.0, results=aggregate_file(tmp_path / "r.jsonl"))
    buf = io.StringIO()
    real = batch_render.console
    batch_render.console = lambda stderr=False: Console(file=buf, width=200)
    try:
        batch_render.print_summary(summary)
    finally:
        batch_render.console = real
    assert "in 4.0s, 2.5 answers/s" in buf.getvalue() and "calls/s" not in buf.getvalue()
    assert BatchSummary(out="r.jsonl", run=p).to_dict()["run"]["rate"] == 2.5


def test_command_line_rebuilds_repeated_and_negated_options():
    from typer.testing import CliRunner

    from mlgrade.commands._common import command_line

    app = typer.Typer()
    seen = []

    @app.command()
    def run(ctx: typer.Context, files: list[str], tag: list[str] = typer.Option([], "--tag"),
            colour: bool = typer.Option(True, "--colour/--no-colour"), n: float = typer.Option(1.0, "--n")) -> None:
        seen.append(command_line(ctx, "tool run"))

    assert CliRunner().invoke(app, ["a", "b", "--tag", "x y", "--tag", "z", "--no-colour", "--n", "2.5"]).exit_code == 0
    assert seen == [["tool", "run", "a", "b", "--tag", "x y", "--tag", "z", "--no-colour", "--n", "2.5"]]

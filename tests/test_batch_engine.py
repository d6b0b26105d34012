"""The batch engine: bounded concurrency, AIMD on 429, resume, truncated lines, retry-errors, cache, order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from batch_helpers import SlowGrader, answers, read_out, write_jsonl
from mlgrade.batch.engine import grade_many
from mlgrade.batch.limiter import AdaptiveLimiter

TESTS = Path(__file__).resolve().parent


def test_every_item_written_once_with_contract_fields(tmp_path, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(30))
    out = tmp_path / "out.jsonl"
    summary = grade_many([inp], out, grader=SlowGrader(default_status="covered"), bank=bank, concurrency=4)
    rows = read_out(out)
    assert sorted(r["id"] for r in rows) == [f"a{i:05d}" for i in range(30)]
    assert all(r["outcome"] == "graded" and r["score"] == 100.0 for r in rows)
    first = rows[0]
    assert {"id", "candidate", "source", "question_id", "outcome", "score", "band", "judgments", "rubric_hash"} <= set(first)
    assert first["source"].startswith(str(inp)) and first["candidate"].startswith("c")
    assert summary.exit_code == 0 and summary.run.graded == 30


@pytest.mark.parametrize("concurrency", [1, 3, 8])
def test_concurrency_bound_is_respected_and_reached(tmp_path, bank, concurrency):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(40))
    grader = SlowGrader(latency=0.02)
    summary = grade_many([inp], tmp_path / "out.jsonl", grader=grader, bank=bank, concurrency=concurrency)
    assert grader.peak == concurrency  # never more, and the pipeline does fill up
    assert summary.peak_in_flight == concurrency


def test_work_goes_out_question_by_question(tmp_path, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(30, qids=("q07", "q01", "q05")))
    grader = SlowGrader()
    grade_many([inp], tmp_path / "out.jsonl", grader=grader, bank=bank, concurrency=1)
    order = [qid for qid, _ in grader.calls]
    assert order == sorted(order)  # q01 block, then q05, then q07, though the input interleaves them


def test_rate_limit_lowers_concurrency_then_recovers(tmp_path, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(60))
    grader = SlowGrader(latency=0.01, rate_limit_first=8)
    summary = grade_many([inp], tmp_path / "out.jsonl", grader=grader, bank=bank, concurrency=8)
    assert summary.run.rate_limits == 8
    assert summary.min_concurrency <= 4  # halved at least once
    assert summary.run.graded == 60 and summary.exit_code == 0


def test_limiter_aimd_arithmetic():
    lim = AdaptiveLimiter(8)
    lim.on_rate_limit(0)
    assert lim.limit == 4
    lim.on_rate_limit(0)  # same storm (within a second): no second cut
    assert lim.limit == 4 and lim.rate_limits == 2
    lim.in_flight = 1
    for _ in range(4):
        lim.in_flight += 1
        lim.release(ok=True)
    assert 4.9 < lim.limit <= 5.1  # +1 per window of `limit` successes


def test_grader_errors_then_retry_errors_regrades_only_those(tmp_path, bank):
    rows = answers(12)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    bad = {rows[2]["answer"], rows[5]["answer"]}
    s1 = grade_many([inp], out, grader=SlowGrader(fail_answers=bad), bank=bank)
    assert s1.exit_code == 1 and s1.results.outcomes["grader_error"] == 2
    errors = [r for r in read_out(out) if r["outcome"] == "grader_error"]
    assert errors[0]["raw_reply"] == "{bad" and errors[0]["score"] is None

    again = SlowGrader()
    s2 = grade_many([inp], out, grader=again, bank=bank)  # plain rerun: errors are final, nothing to do
    assert again.calls == [] and s2.exit_code == 1

    fixed = SlowGrader()
    s3 = grade_many([inp], out, grader=fixed, bank=bank, retry_errors=True)
    assert sorted(a for _, a in fixed.calls) == sorted(bad)
    final = read_out(out)
    assert len(final) == 12 and len({r["id"] for r in final}) == 12
    assert s3.exit_code == 0 and all(r["outcome"] == "graded" for r in final)


def test_truncated_last_line_is_dropped_and_regraded(tmp_path, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(10))
    out = tmp_path / "out.jsonl"
    grade_many([inp], out, grader=SlowGrader(), bank=bank, use_cache=False)
    lines = out.read_text().splitlines(keepends=True)
    lost = json.loads(lines[-1])["id"]
    out.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # a crash mid-write
    grader = SlowGrader()
    summary = grade_many([inp], out, grader=grader, bank=bank, use_cache=False)
    assert summary.recovery["truncated_bytes"] > 0
    assert len(grader.calls) == 1
    rows = read_out(out)  # every line parses again
    assert sorted(r["id"] for r in rows) == [f"a{i:05d}" for i in range(10)] and rows[-1]["id"] == lost


def test_cache_hit_makes_no_call_and_no_cache_bypasses(tmp_path, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(6))
    grade_many([inp], tmp_path / "one.jsonl", grader=SlowGrader(default_status="covered"), bank=bank)
    second = SlowGrader(default_status="covered")
    s = grade_many([inp], tmp_path / "two.jsonl", grader=second, bank=bank)
    assert second.calls == [] and s.run.cache_hits == 6
    rows = read_out(tmp_path / "two.jsonl")
    assert all(r["cached"] and r["usage"]["input_tokens"] == 0 and r["score"] == 100.0 for r in rows)
    third = SlowGrader(default_status="covered")
    grade_many([inp], tmp_path / "three.jsonl", grader=third, bank=bank, use_cache=False)
    assert len(third.calls) == 6


def test_cache_key_changes_with_model(tmp_path, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(3))
    grade_many([inp], tmp_path / "one.jsonl", grader=SlowGrader(), bank=bank)
    other = SlowGrader(model="another-model")
    grade_many([inp], tmp_path / "two.jsonl", grader=other, bank=bank)
    assert len(other.calls) == 3


def test_cache_key_changes_with_the_endpoint_but_not_its_credentials(tmp_path, bank):
    # issue 26: a new server serving the same model name answered "13 from cache"
    from types import SimpleNamespace

    def at(url):
        grader = SlowGrader()
        grader.settings = SimpleNamespace(base_url=url)
        return grader

    inp = write_jsonl(tmp_path / "in.jsonl", answers(3))
    grade_many([inp], tmp_path / "one.jsonl", grader=at("http://alice:pw1@127.0.0.1:8080/v1"), bank=bank)
    same_server = at("http://bob:pw2@127.0.0.1:8080/v1")  # other credentials: the same endpoint
    grade_many([inp], tmp_path / "two.jsonl", grader=same_server, bank=bank)
    assert same_server.calls == []
    new_server = at("http://alice:pw1@127.0.0.1:8081/v1")
    grade_many([inp], tmp_path / "three.jsonl", grader=new_server, bank=bank)
    assert len(new_server.calls) == 3


def test_failures_are_not_cached(tmp_path, bank):
    rows = answers(2)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    grade_many([inp], tmp_path / "one.jsonl", grader=SlowGrader(fail_answers={rows[0]["answer"]}), bank=bank)
    second = SlowGrader()
    grade_many([inp], tmp_path / "two.jsonl", grader=second, bank=bank)
    assert [a for _, a in second.calls] == [rows[0]["answer"]]


def test_dry_run_makes_no_call_and_writes_nothing(tmp_path, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(9) + [{"question_id": "q99", "answer": "x"}])
    grader = SlowGrader()
    s = grade_many([inp], tmp_path / "out.jsonl", grader=grader, bank=bank, dry_run=True)
    assert grader.calls == [] and not (tmp_path / "out.jsonl").exists()
    assert s.estimate["items"] == 9 and s.exit_code == 0 and len(s.skipped_examples) == 1


def test_fatal_failure_stops_the_batch_and_leaves_the_rest_for_a_rerun(tmp_path, bank):
    from mlgrade.errors import GraderFailure, MlgradeError

    class Unauthorised(SlowGrader):
        async def assess(self, rubric, answer, *, facts=None):
            self.calls.append((rubric.id, answer))
            raise GraderFailure("401 invalid API key", fatal=True)

    inp = write_jsonl(tmp_path / "in.jsonl", answers(50))
    grader = Unauthorised()
    with pytest.raises(MlgradeError, match="batch stopped: 401"):
        grade_many([inp], tmp_path / "out.jsonl", grader=grader, bank=bank, concurrency=2)
    assert len(grader.calls) < 10
    assert not (tmp_path / "out.jsonl").exists() or read_out(tmp_path / "out.jsonl") == []


def test_python_rows_are_accepted(tmp_path, bank):
    s = grade_many([{"question_id": "7", "answer": "walk forward"}, {"question_id": "q1"}], tmp_path / "o.jsonl",
                   grader=SlowGrader(), bank=bank)
    assert s.results.outcomes == Counter({"graded": 1, "skipped": 1})


_CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from batch_helpers import SlowGrader
    from mlgrade.batch.engine import grade_many
    grade_many([sys.argv[1]], sys.argv[2], grader=SlowGrader(latency=float(sys.argv[3])), concurrency=8)
""")


def test_kill_9_mid_run_then_resume_gives_every_id_exactly_once(tmp_path):
    n = 400
    inp = write_jsonl(tmp_path / "in.jsonl", answers(n))
    out = tmp_path / "out.jsonl"
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(tests=str(TESTS)))
    env = {**os.environ}
    proc = subprocess.Popen([sys.executable, str(script), str(inp), str(out), "0.02"], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the run is well under way, then kill it hard
        if out.exists() and out.stat().st_size > 0 and out.read_bytes().count(b"\n") >= 40:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    written_before = out.read_bytes().count(b"\n")
    assert 40 <= written_before < n, "the kill should land mid-run"

    done = subprocess.run([sys.executable, str(script), str(inp), str(out), "0"], env=env, timeout=120)
    assert done.returncode == 0
    ids = [r["id"] for r in read_out(out)]
    assert Counter(ids) == Counter(f"a{i:05d}" for i in range(n))  # every id, exactly once


def test_a_grader_error_left_in_the_output_keeps_the_rerun_at_exit_1(tmp_path, bank):
    # a skip is reported once; a grader error is unfinished work until --retry-errors grades it
    rows = answers(2)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    assert grade_many([inp], out, grader=SlowGrader(fail_answers={rows[0]["answer"]}), bank=bank).exit_code == 1
    assert grade_many([inp], out, grader=SlowGrader(), bank=bank).exit_code == 1
    assert grade_many([inp], out, grader=SlowGrader(), bank=bank, retry_errors=True).exit_code == 0


def test_a_repeated_answer_is_read_from_the_store_once_per_run(tmp_path, bank, monkeypatch):
    """Issue 22: 5,000 answers that repeat 125 spent a fifth of the batch's CPU reading, parsing and
    validating the same cached rows again. The lines written are the same as read one by one."""
    from mlgrade.store import Store

    rows = [dict(r, id=f"{r['id']}-{k}") for k in range(4) for r in answers(6)]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    grade_many([write_jsonl(tmp_path / "warm.jsonl", answers(6))], tmp_path / "warm.out", grader=SlowGrader(),
               bank=bank)
    reads: list[str] = []
    real = Store.cache_get
    monkeypatch.setattr(Store, "cache_get", lambda self, key: reads.append(key) or real(self, key))
    s = grade_many([inp], tmp_path / "out.jsonl", grader=SlowGrader(), bank=bank)
    assert s.run.cache_hits == 24 and len(reads) == len(set(reads)) == 6
    import mlgrade.batch.runner as runner

    monkeypatch.setattr(runner, "MAX_REMEMBERED_HITS", 0)  # nothing remembered: every line read again
    grade_many([inp], tmp_path / "again.jsonl", grader=SlowGrader(), bank=bank)
    assert len(reads) == 6 + 24

    def lines(path):
        return [{k: v for k, v in r.items() if k != "latency_ms"} for r in read_out(path)]

    assert lines(tmp_path / "out.jsonl") == lines(tmp_path / "again.jsonl")

"""A batch's sandbox hosts are forked from a warm zygote (code/hosts.py) instead of started
cold: the same job, the same answer, each host still a process of its own for one job (killed at
its deadline, its resources gone with it), and a cold start whenever the zygote is unavailable."""

from __future__ import annotations

import dataclasses
import os
import signal

import pytest

from mlgrade.code import sandbox, hosts
from mlgrade.code.sandbox import Guest, Limits, run_guests

if not sandbox.sandbox_status("wasm").available:
    pytest.skip("no wasm sandbox here", allow_module_level=True)


@pytest.fixture(autouse=True)
def fresh_zygotes():
    hosts.close_all()
    yield
    hosts.close_all()


@pytest.fixture
def starts(monkeypatch):
    """How each host was started: "warm" or "cold"."""
    seen: list[str] = []
    warm, cold = hosts.run, hosts._spawn_cold

    def warm_spy(*args, **kwargs):
        result = warm(*args, **kwargs)
        seen.append("warm")
        return result

    def cold_spy(*args, **kwargs):
        seen.append("cold")
        return cold(*args, **kwargs)

    monkeypatch.setattr(hosts, "run", warm_spy)
    monkeypatch.setattr(hosts, "_spawn_cold", cold_spy)
    return seen


def zygote_pid() -> int:
    (zygote,) = hosts._zygotes.values()
    return zygote.proc.pid


def test_background_hosts_are_forked_from_one_zygote_and_answer_as_cold_ones(starts):
    program = "import sys; print(sum(int(x) for x in sys.stdin.read().split()))"
    runs = [run_guests([Guest(program, stdin=f"{i} 2 3")], limits=Limits(timeout=5.0), background=True)[0]
            for i in range(3)]
    cold = run_guests([Guest(program, stdin="0 2 3")], limits=Limits(timeout=5.0))[0]
    assert starts == ["warm", "warm", "warm", "cold"]
    assert [r.stdout for r in runs] == ["5\n", "6\n", "7\n"] and cold.stdout == "5\n"
    assert len(hosts._zygotes) == 1


def test_a_host_that_used_up_its_descriptors_leaves_the_next_one_whole(starts):
    hog = "fs = []\ntry:\n    while True:\n        fs.append(open('/tmp/f', 'a'))\nexcept OSError:\n    print(len(fs))"
    first = run_guests([Guest(hog)], limits=Limits(timeout=5.0), background=True)[0]
    again = run_guests([Guest(hog)], limits=Limits(timeout=5.0), background=True)[0]
    cold = run_guests([Guest(hog)], limits=Limits(timeout=5.0))[0]
    assert starts == ["warm", "warm", "cold"]
    assert first.ok and again.ok and int(first.stdout) > 100
    # the second host starts with every descriptor the first had, and a forked host inherits none
    # from the zygote that a cold one does not have
    assert first.stdout == again.stdout == cold.stdout


def test_a_forked_host_is_killed_at_its_deadline_and_the_zygote_serves_on(starts, monkeypatch):
    monkeypatch.setattr(sandbox, "_HOST_MARGIN", -0.6)  # the parent's deadline comes before the guest's
    runtime, _ = sandbox._locate("wasm")
    with pytest.raises(sandbox.SandboxError, match="did not finish in time and was killed"):
        sandbox._run_wasm(runtime, [Guest("while True:\n    pass")], Limits(timeout=1.0), warm=True)
    monkeypatch.setattr(sandbox, "_HOST_MARGIN", 3.0)
    r = run_guests([Guest("print('next')")], limits=Limits(timeout=5.0), background=True)[0]
    assert r.stdout == "next\n" and starts == ["warm", "warm"]


def test_a_dead_zygote_is_started_again(starts):
    run_guests([Guest("print(1)")], limits=Limits(timeout=5.0), background=True)
    first = zygote_pid()
    os.kill(first, signal.SIGKILL)
    r = run_guests([Guest("print(2)")], limits=Limits(timeout=5.0), background=True)[0]
    assert r.stdout == "2\n" and zygote_pid() != first
    assert starts == ["warm", "warm"]


def test_without_a_zygote_the_host_starts_cold(starts, monkeypatch):
    def unavailable(path):
        raise hosts.Unavailable("no fork here")

    monkeypatch.setattr(hosts, "Zygote", unavailable)
    r = run_guests([Guest("print('cold')")], limits=Limits(timeout=5.0), background=True)[0]
    assert r.stdout == "cold\n" and starts == ["cold"]


def test_a_batch_stops_its_zygote_when_it_ends(tmp_path, bank, settings):
    from batch_helpers import SlowGrader, read_out, write_jsonl
    from mlgrade.batch.engine import grade_many

    rows = [{"id": "code", "question_id": "q24",
             "answer": "```python\ndef can_shift(a, b):\n    return len(a) == len(b) and b in a + a\n```"}]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    procs: list = []
    real = hosts.Zygote

    def recording(path):
        z = real(path)
        procs.append(z.proc)
        return z

    hosts.Zygote = recording  # type: ignore[misc]
    try:
        summary = grade_many([inp], tmp_path / "out.jsonl", grader=SlowGrader(), bank=bank, concurrency=2,
                             settings=dataclasses.replace(settings, exec_code=True), use_cache=False)
    finally:
        hosts.Zygote = real  # type: ignore[misc]
    assert summary.run.graded == 1
    (out,) = read_out(tmp_path / "out.jsonl")
    assert {t["status"] for t in out["code_tests"]} == {"passed"}
    assert len(procs) == 1 and procs[0].poll() is not None  # started for the batch, gone after it
    assert hosts._zygotes == {}


def test_rubric_tests_give_the_same_results_in_a_batch(bank, starts):
    from mlgrade.code.codegrade import run_rubric_tests

    rubric = bank.get("q24")
    for answer in ("```python\ndef can_shift(a, b):\n    return len(a) == len(b) and b in a + a\n```",
                   "```python\ndef can_shift(a, b):\n    return b in a + a\n```"):
        cold = run_rubric_tests(rubric, answer, seed=7)
        warm = run_rubric_tests(rubric, answer, seed=7, background=True)
        assert [t.model_dump() for t in warm] == [t.model_dump() for t in cold]
        assert {t.status for t in cold} != {"not-run"}
    assert sorted(starts) == ["cold"] * 4 + ["warm"] * 4  # candidate and reference, each answer, each way


def test_no_room_for_the_zygote_s_directory_means_a_cold_start_and_no_descriptor_left_open(starts, monkeypatch):
    # /tmp full (or read-only) when the zygote starts, not when the host's work directory was made
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(hosts.tempfile, "mkdtemp", full)
    for _ in range(3):
        with pytest.raises(hosts.Unavailable):
            hosts.run({"wasmtime_path": "/nonexistent"}, "/", 5.0)
    assert len(os.listdir("/proc/self/fd")) == before
    assert not hosts._zygotes


def test_a_zygote_that_stops_answering_is_replaced_and_the_run_still_answers(starts, monkeypatch):
    import threading

    monkeypatch.setattr(hosts, "ASK_TIMEOUT", 0.5, raising=False)
    run_guests([Guest("print(1)")], limits=Limits(timeout=5.0), background=True)
    stopped = zygote_pid()
    os.kill(stopped, signal.SIGSTOP)  # alive, holding its socket open, answering nothing
    try:
        result: list = []
        worker = threading.Thread(target=lambda: result.append(
            run_guests([Guest("print(2)")], limits=Limits(timeout=5.0), background=True)[0]), daemon=True)
        worker.start()
        worker.join(60)  # a guard against hanging the suite, not a speed check
        assert not worker.is_alive(), "the run waited on a zygote that does not answer"
        assert result[0].stdout == "2\n" and zygote_pid() != stopped
    finally:
        try:
            os.kill(stopped, signal.SIGCONT)
        except ProcessLookupError:
            pass

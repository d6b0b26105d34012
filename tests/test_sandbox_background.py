"""A batch runs candidates' code at low priority (issue 22 item 3), so the event loop that sends
the requests and reads the replies gets the cores first. A niced guest may be starved past a
wall-clock limit it would have met at normal priority, so a run that hits one is run again at
normal priority and only that run counts: being niced never changes a verdict."""

from __future__ import annotations

import os

import pytest

from mlgrade.code import sandbox
from mlgrade.code.sandbox import BACKGROUND_NICE, Guest, GuestResult, Limits, SandboxError, run_guests

if not sandbox.sandbox_status("wasm").available:
    pytest.skip("no wasm sandbox here", allow_module_level=True)


@pytest.fixture
def hosts(monkeypatch):
    """The niceness each sandbox host reported, in the order the hosts ran."""
    seen: list[int | None] = []
    real = sandbox._spawn_host

    def spy(job, *args, **kwargs):
        answer = real(job, *args, **kwargs)
        seen.append(answer.get("nice"))
        return answer

    monkeypatch.setattr(sandbox, "_spawn_host", spy)
    return seen


def niced(by: int) -> int:
    return min(19, os.getpriority(os.PRIO_PROCESS, 0) + by)


def test_background_run_is_niced_and_gives_the_same_output(hosts):
    program = "import sys; print(sum(int(x) for x in sys.stdin.read().split()))"
    quiet = run_guests([Guest(program, stdin="1 2 3")], limits=Limits(timeout=5.0), background=True)[0]
    normal = run_guests([Guest(program, stdin="1 2 3")], limits=Limits(timeout=5.0))[0]
    assert hosts == [niced(BACKGROUND_NICE), niced(0)]
    assert quiet.ok and normal.ok and quiet.stdout == normal.stdout == "6\n"


def test_a_wall_clock_timeout_at_low_priority_is_run_again_at_normal_priority(hosts):
    r = run_guests([Guest("while True:\n    pass")], limits=Limits(timeout=0.5), background=True)[0]
    assert r.interrupted == "timeout"
    assert hosts == [niced(BACKGROUND_NICE), niced(0)]  # the verdict is the normal-priority run's


def test_a_step_timeout_at_low_priority_is_run_again(hosts):
    program = "print('step 1', flush=True)\nwhile True:\n    pass"
    guest = Guest(program, step_marker="step ", step_timeout=0.3)
    r = run_guests([guest], limits=Limits(timeout=3.0), background=True)[0]
    assert r.interrupted == "step-timeout"
    assert hosts == [niced(BACKGROUND_NICE), niced(0)]


def test_limits_that_do_not_depend_on_the_clock_are_verdicts_at_low_priority(hosts):
    r = run_guests([Guest("x = 0\nwhile True:\n    x += 1")], limits=Limits(timeout=5.0, fuel=300_000_000),
                   background=True)[0]
    assert r.interrupted == "fuel"
    assert hosts == [niced(BACKGROUND_NICE)]  # not run twice


def test_a_host_killed_at_its_deadline_at_low_priority_is_run_again(monkeypatch):
    calls: list[int] = []

    def run_wasm(runtime, guests, limits, nice=0):
        calls.append(nice)
        if nice:
            raise SandboxError("the sandbox host failed: the sandbox host did not finish in time and was killed")
        return [GuestResult(exit_code=0, stdout="done\n")]

    monkeypatch.setattr(sandbox, "_run_wasm", run_wasm)
    r = run_guests([Guest("print('done')")], limits=Limits(timeout=1.0), mode="wasm", background=True)[0]
    assert calls == [BACKGROUND_NICE, 0] and r.stdout == "done\n"


def test_rubric_tests_give_the_same_results_in_the_background(bank):
    from mlgrade.code.codegrade import run_rubric_tests

    rubric = bank.get("q24")
    for answer in ("```python\ndef can_shift(a, b):\n    return len(a) == len(b) and b in a + a\n```",
                   "```python\ndef can_shift(a, b):\n    return b in a + a\n```"):
        normal = run_rubric_tests(rubric, answer, seed=7)
        quiet = run_rubric_tests(rubric, answer, seed=7, background=True)
        assert [t.model_dump() for t in quiet] == [t.model_dump() for t in normal]
        assert {t.status for t in normal} != {"not-run"}

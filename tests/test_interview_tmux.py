"""`mlgrade interview` in a real 80×24 terminal (tmux): two questions, each with its follow-up,
the offline grader, the end screen, and the report file holding the verdict."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
from test_practice_tmux import tmux  # noqa: F401  (the fixture: a private tmux server per test)

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed: the real-terminal test of `mlgrade interview` needs it")

TOOLBAR = "Ctrl-C skip or end"
ANSWERS = [
    "It depends on the model: k-NN and SVM use distances, so a feature with a large range dominates.",
    "Gradient descent converges faster when the features are standardised to zero mean and unit variance.",
    "Use a rolling-origin split: train on the past and validate on the block that follows, never shuffled.",
    "Leave a gap between the training window and the validation block so lagged features cannot leak.",
]


QUESTIONS = ["Do feature values need to be scaled", "For a time-series dataset"]  # q05, q07 (seed 1)


def _wait_for_prompt(tmux, n: int, timeout: float = 60) -> str:  # noqa: F811
    """Until the n-th answer prompt is live: its toolbar on screen (prompt_toolkit draws it only
    while it owns the terminal, so keys sent now are not lost to a cooked-mode terminal)."""
    import time

    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux.screen()
        if screen.count("Your answer (Ctrl-D submits") >= n and TOOLBAR in tmux.visible():
            return screen
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for answer prompt {n}; the screen was:\n{screen}")


def _type(tmux, text: str) -> None:  # noqa: F811
    tmux.run("send-keys", "-t", "practice", "-l", text)
    tmux.run("send-keys", "-t", "practice", "C-d")


def test_two_question_interview_at_80x24(tmux, home, tmp_path):  # noqa: F811
    env = {**os.environ, "MLGRADE_GRADER": "offline", "TERM": "xterm-256color"}
    report = tmp_path / "interview.md"
    mlgrade = f"{shlex.quote(sys.executable)} -m mlgrade"
    command = (f"{mlgrade} interview --questions 2 --section technical --fresh --seed 1 --minutes 8 "
               f"--report {shlex.quote(str(report))}; echo EXIT=$?; sleep 60")
    subprocess.run(["tmux", "-L", tmux.socket, "-f", "/dev/null", "new-session", "-d", "-s", "practice",
                    "-x", "80", "-y", "24", command], env=env, check=True, timeout=20)

    for n, answer in enumerate(ANSWERS, 1):
        screen = _wait_for_prompt(tmux, n)
        if n % 2:  # a main question: its panel, and the clock against its share of the 8 minutes
            assert f"Question {(n + 1) // 2} of 2" in screen and QUESTIONS[(n - 1) // 2] in screen
            assert re.search(r"⏱ \d+:\d\d of 4:00", tmux.visible())
        else:
            assert "the interviewer follows up" in screen
            assert "/100" not in screen  # no feedback between questions
        _type(tmux, answer)

    screen = tmux.wait_for("Verdict:", "EXIT=")
    visible = tmux.visible()
    (tmp_path / "interview-80x24.txt").write_text(visible, encoding="utf-8")  # the end screen, for the record
    assert "EXIT=0" in screen and "Traceback" not in screen
    lines = [line.rstrip() for line in visible.splitlines()]
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    verdict = re.search(r"Verdict: (STRONG HIRE|HIRE|LEAN NO HIRE|NO HIRE)", screen)
    assert verdict, screen
    assert re.search(r"^1 q05 · main [\d.]+ \w+ · follow-up ", screen, re.M)
    assert re.search(r"^2 q07 · main [\d.]+ \w+ · follow-up ", screen, re.M)
    assert f"Report: {report}" in screen.replace("\n", "")

    text = report.read_text(encoding="utf-8")
    assert f"Verdict: {verdict.group(1)}" in text and "Rule:" in text
    assert text.count("**Follow-up:**") == 2

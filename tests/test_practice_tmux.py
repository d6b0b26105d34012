"""`mlgrade practice` in a real terminal: tmux runs it, send-keys types, capture-pane reads.

Runs the offline grader with a temporary MLGRADE_HOME (from conftest), on a private tmux
socket so it never touches the developer's own tmux sessions.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed: the real-terminal test of `mlgrade practice` needs it")

LINE1 = "It depends on the algorithm: k-NN and SVM use distances, so a large range feature dominates."
# Only the prompt's bottom toolbar says this: it is on screen once prompt_toolkit owns the terminal.
TOOLBAR = "type e + Ctrl-D for $EDITOR"
LINE2 = "Tree-based models such as random forests split on thresholds and do not need scaling."


class Tmux:
    def __init__(self, socket: str):
        self.socket = socket

    def run(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=20)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-J", "-S", "-300", "-t", "practice")

    def visible(self) -> str:
        """Only what is on screen now (no scrollback), as a person sees it."""
        return self.run("capture-pane", "-p", "-t", "practice")

    def wait_for(self, *texts: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if all(t in screen for t in texts):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {texts!r}; the screen was:\n{screen}")


@pytest.fixture
def tmux(tmp_path):
    # a private server per test: a killed server may still hold its socket when the next test starts
    t = Tmux(f"mlgrade-test-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    yield t
    subprocess.run(["tmux", "-L", t.socket, "kill-server"], capture_output=True, timeout=20)


def test_practice_round_in_a_real_terminal(tmux, home, tmp_path):
    env = {**os.environ, "MLGRADE_GRADER": "offline", "TERM": "xterm-256color"}
    mlgrade = f"{shlex.quote(sys.executable)} -m mlgrade"
    command = f"{mlgrade} practice --question q05; echo EXIT=$?; sleep 60"
    subprocess.run(["tmux", "-L", tmux.socket, "-f", "/dev/null", "new-session", "-d", "-s", "practice",
                    "-x", "120", "-y", "60", command], env=env, check=True, timeout=20)

    # type only once the toolbar is there: keys sent earlier would meet a cooked-mode terminal
    screen = tmux.wait_for("Do feature values need to be scaled", TOOLBAR)
    assert "q05" in screen and "technical" in screen  # question panel with its section and difficulty

    tmux.run("send-keys", "-t", "practice", "-l", LINE1)
    tmux.run("send-keys", "-t", "practice", "Enter")
    tmux.run("send-keys", "-t", "practice", "-l", LINE2)
    tmux.run("send-keys", "-t", "practice", "C-d")

    screen = tmux.wait_for("q05 score", "key point", "q quit")
    assert "/100" in screen and "offline" in screen
    assert "depends-on-model" in screen and "trees-invariant" in screen  # the key-point table
    assert "✓" in screen  # the two-line answer covered something, shown with its evidence

    tmux.run("send-keys", "-t", "practice", "q")
    screen = tmux.wait_for("Session summary", "EXIT=")
    assert "EXIT=0" in screen and "Traceback" not in screen

    done = subprocess.run([sys.executable, "-m", "mlgrade", "history", "--json"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    [attempt] = json.loads(done.stdout)
    assert attempt["question_id"] == "q05" and attempt["outcome"] == "graded"
    assert attempt["answer"] == f"{LINE1}\n{LINE2}"
    assert attempt["grader"] == "offline" and attempt["score"] is not None


def test_ctrl_c_abandons_cleanly_and_stores_nothing(tmux, home):
    env = {**os.environ, "MLGRADE_GRADER": "offline", "TERM": "xterm-256color"}
    command = f"{shlex.quote(sys.executable)} -m mlgrade practice; echo EXIT=$?; sleep 60"
    subprocess.run(["tmux", "-L", tmux.socket, "-f", "/dev/null", "new-session", "-d", "-s", "practice",
                    "-x", "120", "-y", "40", command], env=env, check=True, timeout=20)
    tmux.wait_for(TOOLBAR)
    tmux.run("send-keys", "-t", "practice", "-l", "half an answer")
    tmux.run("send-keys", "-t", "practice", "C-c")
    screen = tmux.wait_for("abandoned", "q quit")  # back at the menu, the session goes on
    assert "EXIT=" not in screen
    tmux.run("send-keys", "-t", "practice", "C-c")  # the second Ctrl-C quits
    screen = tmux.wait_for("EXIT=")
    assert "abandoned" in screen and "EXIT=0" in screen and "Traceback" not in screen
    done = subprocess.run([sys.executable, "-m", "mlgrade", "history", "--json"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert json.loads(done.stdout) == []


def test_on_80x24_the_score_stays_in_sight_of_the_menu(tmux, home, tmp_path):
    env = {**os.environ, "MLGRADE_GRADER": "offline", "TERM": "xterm-256color"}
    command = f"{shlex.quote(sys.executable)} -m mlgrade practice --question q05; echo EXIT=$?; sleep 60"
    subprocess.run(["tmux", "-L", tmux.socket, "-f", "/dev/null", "new-session", "-d", "-s", "practice",
                    "-x", "80", "-y", "24", command], env=env, check=True, timeout=20)
    tmux.wait_for(TOOLBAR)
    tmux.run("send-keys", "-t", "practice", "-l", LINE1)
    tmux.run("send-keys", "-t", "practice", "Enter")
    tmux.run("send-keys", "-t", "practice", "-l", LINE2)
    tmux.run("send-keys", "-t", "practice", "C-d")
    tmux.wait_for("q quit")
    visible = tmux.visible()
    (tmp_path / "practice-80x24.txt").write_text(visible, encoding="utf-8")  # kept for a look when it fails
    assert len(visible.splitlines()) <= 24
    lines = [line.rstrip() for line in visible.splitlines()]
    menu = next(i for i, line in enumerate(lines) if "q quit" in line)
    assert re.match(r"q05 · [\d.]+/100 (strong|adequate|weak|poor) · \d/\d key points covered", lines[menu - 1]), visible
    assert all(len(line) <= 80 for line in lines)
    tmux.run("send-keys", "-t", "practice", "q")
    assert "EXIT=0" in tmux.wait_for("EXIT=")

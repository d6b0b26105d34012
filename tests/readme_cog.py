"""What keeps README.md true: the workspace its examples run in, and the generators cog calls.

Two users:
- `cog -r -I tests README.md` runs the `<!-- [[[cog … ]]] -->` blocks of the README, which call
  `output()`, `help_text()`, `practice_round()`, `options_table()` and `python_result()` below:
  each runs the real CLI (offline grader, a temporary MLGRADE_HOME, fixed width) and prints what
  it printed. `tests/test_readme.py` runs `cog --check`, so a figure that drifts fails the tests.
- `tests/test_readme.py` runs every `mlgrade …` line of the README's ```bash blocks in a
  workspace made by `make_workspace()` (a copy of the shipped `examples/` folder) and checks the
  exit code the README implies.

`WORKSPACE` below is the one source of the example files: `examples/` is written from it
(`python tests/readme_cog.py`), and tests/test_readme.py fails when the two differ. Adding an
example to the README: add the files it needs to `WORKSPACE`, rewrite `examples/`, and see
README.md, "Development", for the markers (`# exit N`, `<!-- readme-test: skip REASON -->`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WIDTH = 100  # the width of every generated excerpt
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

Q07_GOOD = ("For time series I would not use shuffled k-fold, because it leaks future information into training. "
            "Instead I use a rolling-origin (forward-chaining) split: train on the past, validate on the block "
            "that follows, then move the origin forward.")
_ROWS = [
    {"id": "1", "candidate": "alice", "question_id": "q05",
     "answer": "It depends on the model: k-NN and SVM use distances, so a feature with a large range dominates. "
               "Trees split on thresholds and do not need scaling. Fit the scaler on the training data only."},
    {"id": "2", "candidate": "bob", "question_id": "q05", "answer": "Always scale everything to 0-1."},
    # no coding question here: its score would depend on the machine's sandbox, and cog --check must not
    {"id": "3", "candidate": "alice", "question_id": "q07",
     "answer": Q07_GOOD},
    {"id": "4", "candidate": "bob", "question_id": "q17", "answer": ""},
]
_MOHLER = [  # made-up rows in the shape of the Mohler and SciEntsBank sets (none taken from them)
    ("What is a variable?", "A location in memory that can store a value.", "A named place in memory holding a value.", 5),
    ("What is a variable?", "A location in memory that can store a value.", "Something in maths.", 1),
    ("What is a variable?", "A location in memory that can store a value.", "Memory that stores a value.", 4),
    ("What is a loop?", "A construct that repeats a block of code while a condition holds.", "It repeats code.", 4),
    ("What is a loop?", "A construct that repeats a block of code while a condition holds.", "A kind of variable.", 0.5),
    ("What is a loop?", "A construct that repeats code while a condition is true.", "Code repeated until a condition fails.", 5),
]
_EXPERT = [  # a few made-up rows in the shape of an expert-graded set (seed-dev.jsonl)
    {"question_number": 5, "answer_id": "q05-a", "kind": "strong", "expert_score": 85, "expected_band": "strong",
     "answer": "It depends on the model: k-NN, SVM and k-means use distances, so a large-range feature dominates; "
               "gradient descent converges faster on scaled inputs; trees do not care. Fit the scaler on the "
               "training data only, inside the pipeline."},
    {"question_number": 5, "answer_id": "q05-b", "kind": "wrong", "expert_score": 10, "expected_band": "poor",
     "answer": "Always scale every feature to 0-1 before any model, trees included."},
    {"question_number": 7, "answer_id": "q07-a", "kind": "partial", "expert_score": 55, "expected_band": "weak",
     "answer": Q07_GOOD},
]
_LABELS = [(q, ref, ans, "correct" if score >= 3 else "incorrect") for q, ref, ans, score in _MOHLER]


def _csv(header: tuple[str, ...], rows: list[tuple]) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


# path inside examples/ (the working directory of every README example) -> content
WORKSPACE: dict[str, str] = {
    "answer.md": Q07_GOOD + "\n",
    "solution.py": "def can_shift(a, b):\n    return len(a) == len(b) and b in a + a\n",
    "answers.jsonl": "".join(json.dumps(r) + "\n" for r in _ROWS),
    "more.csv": _csv(("id", "candidate", "question_id", "answer"),
                     [("5", "carol", "q07", "Use a time-based split: train on the past, test on the future.")]),
    "answers-folder/q03-dave.md": "k-NN predicts from the k closest training points, by majority vote or average.\n",
    "ref.txt": "Dropout zeroes random units during training so the network cannot rely on any one of them.\n",
    # for `eval`: a human score (0-5) or label per answer, and an expert-graded set of the bank's questions
    "human-scores.csv": _csv(("question", "reference_answer", "student_answer", "score"), _MOHLER),
    "human-labels.csv": _csv(("question", "reference_answer", "student_answer", "label"), _LABELS),
    "expert-graded.jsonl": "".join(json.dumps(r) + "\n" for r in _EXPERT),
    # wide exports (one row per candidate), as Google Forms and an LMS quiz write them
    "form-export.csv": _csv(
        ("Timestamp", "Email Address", "Your name",
         "For a time-series dataset, which cross-validation technique would you suggest, and why?",
         "2. What is semi-supervised machine learning? (2 points)", "Any comments?"),
        [("2024/05/01 10:00:00", "ann@example.com", "Ann", "Rolling origin: train on the past, test on the next block; "
          "never shuffled k-fold, it leaks the future.", "Few labels plus many unlabelled points, used together.", ""),
         ("2024/05/01 10:05:00", "bob@example.com", "Bob", "Forward chaining over time blocks.", "",
          "The time was short, I would have liked a few more minutes")]),
    "quiz-export.csv": _csv(
        ("Surname", "First name", "Email address", "State", "Started on", "Completed", "Time taken", "Grade/10.00",
         "Response 1", "Response 2"),
        [("Lee", "Gus", "gus@example.com", "Finished", "1 May 2024 9:00", "1 May 2024 9:30", "30 mins", "7.00",
          "Several models combined: bagging averages many trees to lower variance, boosting fits errors in turn.",
          "On-policy learns the value of the policy it follows (SARSA); off-policy learns another (Q-learning)."),
         ("Moe", "Hal", "hal@example.com", "Finished", "1 May 2024 9:00", "1 May 2024 9:40", "40 mins", "5.00",
          "Averaging many models.", "")]),
    # two halves of a scored set, for the calibration example (fit on one, apply to the other)
    "half-a.csv": _csv(("question", "reference_answer", "student_answer", "score"), _MOHLER[::2] + _MOHLER[1::2][:1]),
    "half-b.csv": _csv(("question", "reference_answer", "student_answer", "score"), _MOHLER[1::2]),
}
# after the first batch run: a reviewer's decisions on results.jsonl, as `mlgrade review` writes them
_REVIEW = """
from mlgrade.batch.reviews import ReviewSession
s = ReviewSession("results.jsonl", reviewer="readme")
s.override(score=55, note="a README example")
while not s.done:
    s.accept()
"""


def env_for(home: Path, shim_dir: Path | None = None) -> dict[str, str]:
    """Offline, no key, a private MLGRADE_HOME, a fixed width, no colour."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "MLGRADE_")) and k not in ("COLUMNS", "LINES", "FORCE_COLOR")}
    env.update({"MLGRADE_HOME": str(home), "MLGRADE_GRADER": "offline", "COLUMNS": str(WIDTH), "NO_COLOR": "1",
                "TERM": "dumb", "PYTHONIOENCODING": "utf-8"})
    if shim_dir is not None:
        env["PATH"] = f"{shim_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


EXAMPLES_NOTE = """\
# Example files

The files the examples in the project's README.md use: `cd examples`, then run them as written.
The commands write their outputs here too (results.jsonl, report.html, cal.json, …).

human-scores.csv, human-labels.csv and expert-graded.jsonl are a few made-up rows in the shape
of the Mohler and SciEntsBank data sets and of an expert-graded set, so the `mlgrade eval`
examples run; README.md, "Measure agreement with human graders", says where the real data sets
come from.

Generated from `WORKSPACE` in tests/readme_cog.py: edit them there, then run
`python tests/readme_cog.py` (tests/test_readme.py fails when this folder and that source differ).
"""


def example_files() -> dict[str, str]:
    """Everything examples/ ships: WORKSPACE, a note saying what the folder is, and a .gitignore
    that keeps what the README's commands write there out of git."""
    keep = sorted({rel.split("/")[0] + "/" for rel in WORKSPACE if "/" in rel} | set(WORKSPACE))
    ignore = "# what the README's commands write here (results.jsonl, report.html, …)\n*\n" + "".join(
        f"!{rel}\n" for rel in [".gitignore", "README.md", *keep])
    return {**WORKSPACE, "README.md": EXAMPLES_NOTE, ".gitignore": ignore}


def write_examples(folder: Path = EXAMPLES) -> list[str]:
    """Write examples/ from WORKSPACE; the paths that changed."""
    wanted = example_files()
    changed = examples_drift(folder)
    for rel in changed:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[rel], encoding="utf-8", newline="")
    return changed


def examples_drift(folder: Path = EXAMPLES) -> list[str]:
    """The shipped files (relative to folder) that are missing or differ from their source. Other
    files there are a user's outputs, not drift."""
    return sorted(rel for rel, text in example_files().items()
                  if not (folder / rel).is_file() or (folder / rel).read_bytes() != text.encode("utf-8"))


_prepared: Path | None = None  # one prepared workspace per process, copied for each use


def make_workspace(root: Path) -> tuple[Path, dict[str, str]]:
    """<root>/work: the shipped files of examples/ (read from there, not from WORKSPACE, so the
    README runs against what a user gets; a user's own outputs there are not copied), a `mlgrade`
    on PATH that is this interpreter's, results.jsonl from a first batch run (so `report
    results.jsonl` has something to read) and results.reviews.jsonl with a reviewer's decisions on
    it (for `eval --reviews`). Returns the working directory and the environment to run commands with.
    The first call prepares them; later calls copy that (cog makes a workspace per README excerpt)."""
    global _prepared
    if _prepared is None:
        import atexit

        prepared = Path(tempfile.mkdtemp(prefix="mlgrade-readme-prepared-"))
        atexit.register(shutil.rmtree, prepared, ignore_errors=True)
        _prepare(prepared)
        _prepared = prepared
    for part in ("work", "home"):
        if (_prepared / part).exists():
            shutil.copytree(_prepared / part, root / part, symlinks=True)
    return root / "work", _with_shim(root)


def _with_shim(root: Path) -> dict[str, str]:
    shim = root / "bin"
    shim.mkdir(exist_ok=True)
    script = shim / "mlgrade"
    script.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m mlgrade \"$@\"\n", encoding="utf-8")
    script.chmod(0o755)
    return env_for(root / "home", shim)


def _prepare(root: Path) -> None:
    if not EXAMPLES.is_dir():
        raise FileNotFoundError(f"{EXAMPLES} is missing: run `python tests/readme_cog.py` to write it")
    work = root / "work"
    for rel in example_files():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(EXAMPLES / rel, work / rel)
    env = _with_shim(root)
    # --no-cache: leaves no cached grades behind, so the README's own batch runs grade afresh
    subprocess.run([sys.executable, "-m", "mlgrade", "batch", "answers.jsonl", "--out", "results.jsonl", "--no-cache"],
                   cwd=work, env=env, capture_output=True, timeout=120)
    subprocess.run([sys.executable, "-c", _REVIEW], cwd=work, env=env, capture_output=True, timeout=120)


_MASKS = [
    (re.compile(r"\b\d[\d,]* ms\b"), "… ms"),                       # latencies
    (re.compile(r"\bin \d+(\.\d+)?s\b"), "in …s"),                  # wall time
    (re.compile(r"\b\d+(\.\d+)? answers/s\b"), "… answers/s"),      # rates
    (re.compile(r"(rows graded · \d+ derived rubrics · )\d+(\.\d+)?s"), r"\1…s"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"),       # the fake endpoint's port
    (re.compile(r"\b20\d\d-\d\d-\d\d\b"), "DATE"),                  # when a figure was measured
]


def mask(text: str) -> str:
    """Timings change from run to run: shown as `…` so the README can be checked byte for byte."""
    for pattern, repl in _MASKS:
        text = pattern.sub(repl, text)
    return "\n".join(line.rstrip() for line in text.splitlines())


def _run(command: str, *, stderr: bool = False) -> str:
    with tempfile.TemporaryDirectory(prefix="mlgrade-readme-") as tmp:
        work, env = make_workspace(Path(tmp))
        done = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=300,
                              stdin=subprocess.DEVNULL)
    return mask(done.stdout + (done.stderr if stderr else ""))


def _emit(text: str, lang: str = "") -> None:
    import cog  # only available while cog runs

    cog.outl(f"```{lang}")
    cog.outl(text.rstrip("\n"))
    cog.outl("```")


def output(command: str, *, lines: tuple[int, int] | None = None, stderr: bool = False) -> None:
    """The output of `command` (run in the README workspace), optionally cut to lines[0]:lines[1]."""
    text = _run(command, stderr=stderr)
    if lines is not None:
        all_lines = text.splitlines()
        text = "\n".join(all_lines[lines[0]:lines[1]]) + ("\n…" if lines[1] < len(all_lines) else "")
    _emit(text)


def transcript(*commands: str, env: dict[str, str] | None = None, hide: tuple[int, ...] = (),
               setup: str = "") -> None:
    """A terminal transcript: `$ command` and what it printed (stdout and stderr, in order), for
    each command in turn in one workspace. `hide`: indexes of commands shown without their output.
    `env`: extra variables for every command, `setup`: a shell line run first (neither is shown)."""
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mlgrade-readme-") as tmp:
        work, base = make_workspace(Path(tmp))
        if setup:
            subprocess.run(["bash", "-c", setup], cwd=work, env=base, capture_output=True, timeout=60)
        for i, command in enumerate(commands):
            done = subprocess.run(["bash", "-c", command + " 2>&1"], cwd=work, env={**base, **(env or {})},
                                  capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
            lines.append(f"$ {command}")
            if i not in hide and done.stdout.strip():
                lines.append(mask(done.stdout).rstrip("\n"))
    _emit("\n".join(lines))


def help_text(command: str) -> None:
    """`mlgrade … --help`, as a person sees it at WIDTH columns."""
    _emit(_run(f"mlgrade {command} --help").strip("\n"))


def practice_round(question: str, answer_lines: list[str]) -> None:
    """One practice round through the real loop (mlgrade.practice.tui.run_practice), with the
    person's keys scripted: the answer, then `q`. The answer is echoed as the terminal shows it."""
    code = f"""
import sys
from rich.console import Console
from mlgrade.config import load_settings
from mlgrade.grading import make_grader
from mlgrade.practice.session import PracticeSession, SessionOptions
from mlgrade.practice.tui import Inputs, run_practice
from mlgrade.rubrics import load_rubrics
from mlgrade.store import Store

lines = {answer_lines!r}
console = Console(width={WIDTH}, highlight=False)
def answer(default=""):
    for line in lines:
        console.print("│ " + line, highlight=False)
    return "\\n".join(lines)
def key(prompt, keys, default=None):
    console.print(prompt + "q")
    return "q"
settings = load_settings()
with Store.for_settings(settings) as store:
    session = PracticeSession(store, load_rubrics(), grader=make_grader(settings), settings=settings,
                              options=SessionOptions(questions=[{question!r}]))
    run_practice(session, console, inputs=Inputs(answer=answer, key=key))
"""
    with tempfile.TemporaryDirectory(prefix="mlgrade-readme-") as tmp:
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp, env=env_for(Path(tmp) / "home"),
                              capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    _emit(mask(done.stdout))


def python_result(expr: str) -> str:
    """The value of a Python expression run offline with a temporary MLGRADE_HOME (for figures
    quoted in the README's Python examples)."""
    code = f"import mlgrade\nprint({expr})"
    with tempfile.TemporaryDirectory(prefix="mlgrade-readme-") as tmp:
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp, env=env_for(Path(tmp) / "home"),
                              capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return done.stdout.strip()


MEANINGS = {
    "--out": "Where to write the output",
    "--limit": "At most N (questions, attempts, rows)",
    "--question": "The question: its id (`rubrics derive`: its text)",
    "--file": "Read the text from a UTF-8 file",
    "--concurrency": "Most requests in flight at once",
    "--no-cache": "Do not reuse cached results",
    "--retry-errors": "Grade again what ended in a grader error",
    "--seed": "Seed for a repeatable random choice (eval: the sample; interview: the questions)",
}


def options_table() -> None:
    """The shared options: one row per long name, the short letter and the commands that take it."""
    import cog
    import typer

    from mlgrade.cli import app

    root = typer.main.get_command(app)
    rows: dict[str, dict] = {}

    def walk(cmd, path: list[str]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])
        if not path:
            return
        for p in cmd.params:
            if p.param_type_name != "option" or p.hidden:
                continue
            opts = [*p.opts, *p.secondary_opts]
            long = next(o for o in opts if o.startswith("--"))
            row = rows.setdefault(long, {"short": ", ".join(o for o in opts if not o.startswith("--")),
                                         "also": ", ".join(o for o in opts if o.startswith("--") and o != long),
                                         "help": (p.help or "").split(". ")[0].rstrip("."), "commands": []})
            row["commands"].append(" ".join(path))
            row.setdefault("helps", []).append(p.help)

    walk(root, [])
    shared = {k: v for k, v in rows.items() if len(v["commands"]) > 1}
    for long, row in shared.items():
        if len(set(row["helps"])) > 1:  # worded for each command: say what they have in common
            row["help"] = MEANINGS.get(long, row["help"])
    cog.outl("| option | short | meaning | commands |")
    cog.outl("|---|---|---|---|")
    for long, row in sorted(shared.items(), key=lambda kv: (-len(kv[1]["commands"]), kv[0])):
        name = f"`{long}`" + (f" (also `{row['also']}`)" if row["also"] else "")
        short = f"`{row['short']}`" if row["short"] else ""
        cog.outl(f"| {name} | {short} | {row['help']} | {', '.join(sorted(row['commands']))} |")



def interview_run(questions: list[str], answers: list[str], *, seconds_per_answer: int = 95) -> None:
    """A two-question mock interview through the real loop (mlgrade.practice.interview_tui) with the
    offline grader: the answers (main, follow-up, main, follow-up…) are scripted, and so is the clock
    (each answer takes `seconds_per_answer`), so the times shown are the same on every run. Prints
    what the person sees, then the end screen and the report's path as `mlgrade interview` does."""
    code = f"""
import itertools
from rich.console import Console
from mlgrade.config import load_settings
from mlgrade.grading import make_grader
from mlgrade.practice.interview import Interview, InterviewOptions
from mlgrade.practice.interview_report import default_report_path, write_report
from mlgrade.practice.interview_tui import Inputs, render_end_screen, run_interview
from mlgrade.rubrics import load_rubrics
from mlgrade.store import Store

answers = iter({answers!r})
ticks = itertools.count(0, {seconds_per_answer})  # read twice per answer: when it starts, when it is in
console = Console(width={WIDTH}, highlight=False)
def answer(hint="", default="", clock=None):
    text = next(answers)
    console.print("│ " + text, highlight=False)
    return text
settings = load_settings(exec_code=False)
bank = load_rubrics()
with Store.for_settings(settings) as store:
    interview = Interview.start(store, bank, InterviewOptions(ask={questions!r}, minutes=4 * {len(questions)}),
                                grader=make_grader(settings), settings=settings)
    result = run_interview(interview, console, inputs=Inputs(answer=answer, now=lambda: next(ticks)))
    path = write_report(result, bank.rubrics, default_report_path(settings.home, interview.id))
    result = interview.finish(report_path=str(path))
    console.print()
    render_end_screen(result, console)
    console.print(f"Report: {{path}}")
"""
    with tempfile.TemporaryDirectory(prefix="mlgrade-readme-") as tmp:
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp, env=env_for(Path(tmp) / "home"),
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        text = done.stdout.replace(str(Path(tmp) / "home"), "~/.local/share/mlgrade")
    _emit(mask(re.sub(r"interview-[0-9a-f]{12}\.md", "interview-….md", text)))


def with_fake_endpoint(*commands: str, hide: tuple[int, ...] = ()) -> None:
    """A transcript of `commands` with the LLM grader pointed at tests/fake_openai_server.py (a
    real HTTP server on 127.0.0.1 whose replies are plausible, not wise) as model `fake-llm`.
    Code runs are off (MLGRADE_EXEC=0) so the figures do not depend on this machine's sandbox."""
    from fake_openai_server import FakeOpenAIServer

    with FakeOpenAIServer(model="fake-llm") as srv:
        transcript(*commands, hide=hide, env={"OPENAI_BASE_URL": srv.base_url, "MLGRADE_MODEL": "fake-llm",
                                              "MLGRADE_GRADER": "auto", "MLGRADE_EXEC": "0"})


if __name__ == "__main__":
    changed = write_examples()
    print(f"examples/: {len(changed)} file(s) rewritten" + (": " + ", ".join(changed) if changed else ""))

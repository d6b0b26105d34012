"""README.md stays true: its generated parts match a fresh run (cog --check), and every `mlgrade`
line in its bash blocks runs with the exit code the README implies.

Conventions (also in README.md, "Development"):
- every line of a ```bash block that calls `mlgrade` is run, in document order, in one workspace
  made by tests/readme_cog.py (offline grader, temporary MLGRADE_HOME, the shipped files of
  examples/, which must equal WORKSPACE there);
- the line must exit 0, unless its comment starts with `# exit N`;
- `<!-- readme-test: skip REASON -->` on the line before a block's opening fence skips the block;
  the reason is required.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\b(.*?)-->")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
EXIT = re.compile(r"#\s*exit (\d+)\b")
CALLS_MLGRADE = re.compile(r"(^|[|;&(]\s*|\$\s+)mlgrade\b")


@dataclass
class Command:
    line_no: int
    text: str
    expected: int


@dataclass
class Block:
    line_no: int
    lang: str
    lines: list[tuple[int, str]]
    skip: str | None  # the reason, when the block is marked


def blocks(text: str) -> list[Block]:
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(2).lower()
        prev = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        skip = SKIP.search(prev)
        body: list[tuple[int, str]] = []
        i += 1
        while i < len(lines) and not FENCE.match(lines[i]):
            body.append((i + 1, lines[i]))
            i += 1
        found.append(Block(start + 1, lang, body, skip.group(1).strip() if skip else None))
        i += 1
    return found


def commands(block: Block) -> list[Command]:
    out = []
    pending = ""
    for line_no, raw in block.lines:
        line = raw.rstrip()
        if line.startswith("$ "):
            line = line[2:]
        if line.endswith("\\"):  # a continued line
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if not CALLS_MLGRADE.search(line) or line.lstrip().startswith("#"):
            continue
        m = EXIT.search(line)
        out.append(Command(line_no, line, int(m.group(1)) if m else 0))
    return out


def _shell_blocks() -> list[Block]:
    return [b for b in blocks(README.read_text(encoding="utf-8")) if b.lang in ("bash", "sh", "shell", "console")]


def test_every_skip_has_a_reason():
    for b in blocks(README.read_text(encoding="utf-8")):
        if b.skip is not None:
            assert b.skip, f"README.md:{b.line_no}: `readme-test: skip` needs a reason"


def test_the_parser_finds_the_readme_examples():
    cmds = [c for b in _shell_blocks() if b.skip is None for c in commands(b)]
    texts = [c.text for c in cmds]
    assert any(t.startswith("mlgrade grade q07") for t in texts)
    assert any(t.startswith("echo ") and "| mlgrade grade" in t for t in texts)
    assert any(c.expected == 2 for c in cmds)  # `# exit 2` is read (no README example exits 1 on a rerun)
    assert len(cmds) >= 10


def test_parser_conventions(tmp_path):
    text = ("```bash\nmlgrade a   # exit 2: bad\necho x | mlgrade b\npip install x\n```\n\n"
            "<!-- readme-test: skip needs a tty -->\n```bash\nmlgrade practice\n```\n```\nmlgrade output block\n```\n")
    found = blocks(text)
    assert [b.lang for b in found] == ["bash", "bash", ""]
    assert [(c.text.split("#")[0].strip(), c.expected) for c in commands(found[0])] == [("mlgrade a", 2),
                                                                                         ("echo x | mlgrade b", 0)]
    assert found[1].skip == "needs a tty"


def test_examples_folder_matches_its_source():
    import readme_cog

    drift = readme_cog.examples_drift()
    assert not drift, ("examples/ differs from WORKSPACE in tests/readme_cog.py: run `python tests/readme_cog.py`\n"
                       + "\n".join(drift))


def test_examples_drift_is_seen(tmp_path):
    import readme_cog

    assert readme_cog.write_examples(tmp_path) and readme_cog.examples_drift(tmp_path) == []
    (tmp_path / "answer.md").write_text("edited by hand\n")
    (tmp_path / "more.csv").unlink()
    (tmp_path / "results.jsonl").write_text("{}\n")  # a user's output is not drift
    assert readme_cog.examples_drift(tmp_path) == ["answer.md", "more.csv"]


def test_hidden_case_count_is_the_rubrics():
    from mlgrade.rubrics import load_rubrics

    counts = {r.hidden_tests.count for r in load_rubrics() if r.kind == "coding" and r.hidden_tests}
    said = {int(n) for n in re.findall(r"(\d+) hidden random cases", README.read_text(encoding="utf-8"))}
    assert counts and said == counts


def test_ci_runs_the_readme_test_commands_as_written():
    """.ci/run's first step is the README's test command and its last the integration command, verbatim."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    tests = [line for b in _shell_blocks() for _, line in b.lines if line.startswith("python3 -m venv") and "pytest" in line]
    integration = [line for b in _shell_blocks() for _, line in b.lines if "pytest -m integration" in line]
    assert len(tests) == 1 and len(integration) == 1
    assert "'.[dev]'" in tests[0] and "integration" not in tests[0].split("pytest")[0]
    assert tests[0] in ci and integration[0] in ci
    assert ci.index(tests[0]) < ci.index(integration[0])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    import readme_cog

    return readme_cog.make_workspace(tmp_path_factory.mktemp("readme"))


def test_every_readme_command_exits_as_documented(workspace):
    work, env = workspace
    failures = []
    ran = 0
    for block in _shell_blocks():
        if block.skip is not None:
            continue
        for cmd in commands(block):
            try:  # no terminal on stdin: a command that waits for a person fails instead of hanging
                done = subprocess.run(["bash", "-c", cmd.text], cwd=work, env=env, capture_output=True, text=True,
                                      stdin=subprocess.DEVNULL, timeout=120)
            except subprocess.TimeoutExpired:
                failures.append(f"README.md:{cmd.line_no}: `{cmd.text}` did not finish in 120 s")
                continue
            ran += 1
            if done.returncode != cmd.expected or "Traceback" in done.stderr:
                failures.append(f"README.md:{cmd.line_no}: `{cmd.text}` exited {done.returncode}, "
                                f"expected {cmd.expected}; stderr: {done.stderr.strip()[-400:]}")
    assert ran >= 10
    assert not failures, "\n".join(failures)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is needed to run cog's generators")
def test_generated_parts_are_up_to_date():
    pytest.importorskip("cogapp", reason="cogapp is in the dev extra: pip install -e '.[dev]'")
    done = subprocess.run([sys.executable, "-m", "cogapp", "--check", "-I", "tests", "README.md"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, ("README.md's generated parts are out of date: run `cog -r -I tests README.md`\n"
                                  + done.stdout[-2000:] + done.stderr[-2000:])

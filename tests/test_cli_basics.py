"""Every command has --help with examples; the fast commands never import heavy modules."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer

from mlgrade.cli import app


def _leaf_commands() -> list[list[str]]:
    root = typer.main.get_command(app)
    found: list[list[str]] = []

    def walk(cmd, path: list[str]) -> None:
        if getattr(cmd, "commands", None):  # a group (typer vendors its own click)
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
        else:
            found.append(path)

    walk(root, [])
    return found


def _runnable_groups() -> list[list[str]]:
    """Groups that do something when named alone (`mlgrade history`): their --help is a command's."""
    root = typer.main.get_command(app)
    return [[name] for name, cmd in root.commands.items()
            if getattr(cmd, "commands", None) and getattr(cmd, "invoke_without_command", False)]


def test_the_expected_commands_exist():
    names = {" ".join(p) for p in _leaf_commands()}
    assert {"questions list", "questions show", "rubrics validate"} <= names


# a group that runs alone too: `history --help` had no examples (issue 26: its group help replaced the docstring)
@pytest.mark.parametrize("path", [*_leaf_commands(), *_runnable_groups()], ids=lambda p: " ".join(p))
def test_every_command_has_help_with_examples(cli, path):
    result = cli([*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`mlgrade {' '.join(path)} --help` shows no example"


def test_root_help(cli):
    result = cli(["--help"])
    assert result.exit_code == 0 and "questions" in result.output


def test_questions_list_json(cli):
    result = cli(["questions", "list", "--json"])
    assert result.exit_code == 0
    items = json.loads(result.stdout)
    assert len(items) >= 1
    assert {"id", "section", "kind", "difficulty", "question"} <= set(items[0])


def test_questions_list_section_filter(cli):
    items = json.loads(cli(["questions", "list", "--section", "nlp", "--json"]).stdout)
    assert items and {i["section"] for i in items} == {"nlp"}


def test_unknown_section_is_one_line_exit_2(cli):
    result = cli(["questions", "list", "--section", "astrology"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: unknown section 'astrology': choose one of basic,")


def test_questions_show_with_answer(cli, bank):
    first = bank.ids()[0]
    result = cli(["questions", "show", first.lstrip("q0"), "--answer"])
    assert result.exit_code == 0
    assert bank.get(first).key_points[0].id in result.stdout


def test_unknown_question_is_one_line_exit_2(cli):
    result = cli(["questions", "show", "q99"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: unknown question id 'q99'")
    assert "Did you mean" in result.stderr


def test_rubrics_validate_ok_and_failing(cli, tmp_path):
    ok = cli(["rubrics", "validate"])
    assert ok.exit_code == 0, ok.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.yaml").write_text("id: x01\nnumber: 0\nwhat: nope\n")
    result = cli(["rubrics", "validate", bad])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) > 1 and all(line.startswith(str(bad / "x.yaml")) for line in lines)


@pytest.mark.parametrize("args", [["--help"], ["questions", "list"], ["rubrics", "validate"]])
def test_fast_commands_do_not_import_openai(args):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from mlgrade.cli import app\n"
        f"r = CliRunner().invoke(app, {args!r})\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('openai', 'httpx', 'tenacity', 'numpy') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"heavy modules imported by `mlgrade {' '.join(args)}`: {out}"


# --------------------------------------------------------------------------- issue 17: small truths


@pytest.mark.parametrize("args", [
    ["grade", "q07", "--file", "answer.md"],
    ["grade", "q07", "--file", "answer.md", "--json"],
    ["questions", "show", "q15", "--answer"],
    ["questions", "list", "--json"],
])
def test_a_closed_pipe_is_a_quiet_exit_0(tmp_path, args):
    """`mlgrade … | head -1`: the reader leaves early. Closing our end of the pipe before the
    command writes makes every write fail with EPIPE, the worst case of that race."""
    import os

    (tmp_path / "answer.md").write_text("Shuffled k-fold leaks future information into training.\n", encoding="utf-8")
    env = {**os.environ, "MLGRADE_GRADER": "offline"}
    proc = subprocess.Popen([sys.executable, "-m", "mlgrade", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=tmp_path, env=env)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "Broken pipe" not in err and "Exception ignored" not in err


def test_a_closed_pipe_in_process_is_exit_0(cli, monkeypatch):
    from mlgrade.commands import questions_cmd

    def closed(_data):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(questions_cmd, "print_json", closed)
    result = cli(["questions", "list", "--json"])
    assert result.exit_code == 0 and result.stderr == ""


def test_rich_output_to_a_closed_pipe_exits_0(cli, monkeypatch):
    from rich.console import Console

    def closed(self):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(Console, "_write_buffer", closed)
    result = cli(["questions", "show", "q15", "--answer"])
    assert result.exit_code == 0


def test_rubrics_validate_missing_folder_is_exit_2(cli, tmp_path):
    result = cli(["rubrics", "validate", tmp_path / "nonexistent"])
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nonexistent'}: no such folder\n"


def test_rubrics_validate_warns_outside_the_guides_key_point_range(cli, bank, tmp_path):
    import yaml

    data = bank.get("q05").model_dump(mode="json", exclude_none=True)
    data["key_points"] = data["key_points"][:1]
    data["key_points"][0]["essential"] = True
    data["correctness_points"] = []
    data["follow_ups"] = [f["question"] for f in data["follow_ups"]]  # their targets were among the points cut
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "q05.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    result = cli(["rubrics", "validate", folder])
    assert result.exit_code == 0, result.output  # valid: a warning, not an error
    assert "warning:" in result.stderr and "q05: 1 key point" in result.stderr and "4–8" in result.stderr


def test_built_in_rubrics_follow_the_key_point_guide(bank):
    from mlgrade.rubrics import rubric_warnings

    assert rubric_warnings(bank) == []


def test_unknown_id_message_has_no_stray_period(cli):
    result = cli(["grade", "abc", "hi"])
    assert result.exit_code == 2
    assert result.stderr == "error: unknown question id 'abc' (see `mlgrade questions list`)\n"


@pytest.mark.parametrize("args,env", [
    (["questions", "list", "--section", "s" * 10_000], None),
    (["grade", "q05", "an answer"], {"MLGRADE_GRADER": "g" * 10_000}),
    (["grade", "q05", "an answer"], {"MLGRADE_MAX_ANSWER_CHARS": "n" * 10_000}),
])
def test_a_long_name_is_quoted_short_in_the_error(cli, args, env):
    res = cli(args, env=env)
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and len(res.stderr) < 300, res.stderr[:300]
    assert "…'" in res.stderr


def test_the_groups_that_run_alone_are_history_and_questions():
    assert {"history", "questions"} <= {p[0] for p in _runnable_groups()}


def test_questions_alone_lists_the_bank(cli):
    # issue 26: `mlgrade questions` printed its usage and exited 2; like `mlgrade history` it lists
    result = cli(["questions"])
    assert result.exit_code == 0, result.output
    assert "q01" in result.output and "q25" in result.output


def test_a_ctrl_c_inside_a_finaliser_prints_no_traceback():
    """An event loop collected while Ctrl-C lands reported "Exception ignored in
    BaseEventLoop.__del__ … KeyboardInterrupt" over the practice screen (a CI run of
    test_practice_tmux); mlgrade's entry point keeps that quiet and every other report as it was."""
    program = (
        "import sys\n"
        "import mlgrade.cli as cli\n"
        "sys.argv = ['mlgrade', '--version']\n"
        "try:\n"
        "    cli.main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "class Interrupted:\n"
        "    def __del__(self):\n"
        "        raise KeyboardInterrupt\n"
        "class Broken:\n"
        "    def __del__(self):\n"
        "        raise ValueError('a real bug')\n"
        "Interrupted()\n"
        "Broken()\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert "KeyboardInterrupt" not in done.stderr
    assert "ValueError: a real bug" in done.stderr  # other finaliser errors are still reported

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


def test_the_expected_commands_exist():
    names = {" ".join(p) for p in _leaf_commands()}
    assert {"questions list", "questions show", "rubrics validate"} <= names


@pytest.mark.parametrize("path", _leaf_commands(), ids=lambda p: " ".join(p))
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

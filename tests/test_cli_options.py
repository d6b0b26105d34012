"""One name, one meaning: every command's options are walked, subcommands included.

The rule (issue 17): the same long name has the same short letter and the same kind of value on
every command; a short letter stands for one long name only; the options shared by several
commands come from commands/_common.py, so their help is the same text everywhere.
"""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
import typer

from mlgrade.cli import app

# commands that can grade with an LLM: each takes the four endpoint options
ENDPOINT_COMMANDS = ["grade", "practice", "interview", "batch", "eval", "doctor", "rubrics derive"]
SHARED_HELP = ("--grader", "--model", "--base-url", "--refresh", "--rubrics", "--json", "--section")


def _commands() -> dict[str, object]:
    root = typer.main.get_command(app)
    found: dict[str, object] = {"": root}

    def walk(cmd, path: list[str]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            found[" ".join([*path, name])] = sub
            walk(sub, [*path, name])

    walk(root, [])
    return found


def _options(cmd) -> list:  # visible options only: hidden ones are old spellings kept working
    return [p for p in cmd.params if p.param_type_name == "option" and not p.hidden]


def _meaning(p) -> tuple:
    annotation = p.bare_type().lower()
    annotation = re.sub(r"^list\[(.*)\]$", r"\1", annotation)  # repeatable or not, the same kind of value
    return ("flag" if p.is_flag else annotation,)


def _names(p) -> tuple[list[str], list[str]]:
    opts = [*p.opts, *p.secondary_opts]
    return [o for o in opts if o.startswith("--")], [o for o in opts if not o.startswith("--")]


def test_same_long_name_same_short_letter_and_meaning():
    seen: dict[str, dict[tuple, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path, cmd in _commands().items():
        for p in _options(cmd):
            longs, shorts = _names(p)
            for long in longs:
                seen[long][(tuple(sorted(shorts)), _meaning(p))].append(path or "mlgrade")
    clashes = {long: dict(v) for long, v in seen.items() if len(v) > 1}
    assert not clashes, f"one long name, several short letters or meanings: {clashes}"


def test_a_short_letter_stands_for_one_long_name():
    seen: dict[str, set[str]] = defaultdict(set)
    where: dict[str, list[str]] = defaultdict(list)
    for path, cmd in _commands().items():
        for p in _options(cmd):
            longs, shorts = _names(p)
            for short in shorts:
                seen[short].add(longs[0])
                where[short].append(f"{path}:{longs[0]}")
    clashes = {s: sorted(where[s]) for s, longs in seen.items() if len(longs) > 1}
    assert not clashes, f"one short letter, several options: {clashes}"
    assert seen["-f"] == {"--file"} and seen["-n"] == {"--limit"}


def test_shared_options_have_one_definition():
    helps: dict[str, set[str]] = defaultdict(set)
    for cmd in _commands().values():
        for p in _options(cmd):
            longs, _ = _names(p)
            if longs[0] in SHARED_HELP:
                helps[longs[0]].add(p.help)
    assert set(helps) == set(SHARED_HELP)
    assert all(len(h) == 1 for h in helps.values()), {k: v for k, v in helps.items() if len(v) > 1}


@pytest.mark.parametrize("path", ENDPOINT_COMMANDS)
def test_endpoint_options_on_every_command_that_grades(path):
    longs = {long for p in _options(_commands()[path]) for long in _names(p)[0]}
    assert {"--grader", "--model", "--base-url", "--refresh"} <= longs, path


@pytest.mark.parametrize("path", [p for p in _commands() if p])
def test_help_has_no_raw_type_labels(cli, path):
    result = cli([*path.split(), "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    raw = re.findall(r"<(?:bool|str|int|float|path|Path|int range|float range)>", result.output)
    assert not raw, f"`mlgrade {path} --help` shows {raw}"


def test_root_help_has_no_raw_type_labels(cli):
    assert "<bool>" not in cli(["--help"], env={"COLUMNS": "120"}).output


def test_version_without_a_command(cli):
    from mlgrade import __version__

    for flag in ("--version", "-V"):
        result = cli([flag])
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == f"mlgrade {__version__}"


# --------------------------------------------------------------------------- old spellings still work


def test_old_and_new_refresh_spellings(cli):
    for flag in ("--refresh", "--no-cache-capabilities"):
        result = cli(["grade", "q07", "Shuffled k-fold leaks the future.", "--grader", "offline", "--json", flag])
        assert result.exit_code == 0, result.output
    assert cli(["doctor", "--offline", "--no-cache-capabilities"]).exit_code == 0


def test_practice_count_is_limit():
    cmd = _commands()["practice"]
    [limit] = [p for p in cmd.params if "--limit" in p.opts]
    assert {"--count", "-n"} <= set(limit.opts)


@pytest.mark.parametrize("args", [
    ["-r", "Dropout zeroes random units while training."],
    ["--reference", "Dropout zeroes random units while training."],
    ["--answer", "Dropout zeroes random units while training."],
    ["-a", "Dropout zeroes random units while training."],
    ["--file", "ref.txt"], ["-f", "ref.txt"], ["--answer-file", "ref.txt"],
])
def test_derive_reference_spellings(cli, tmp_path, args):
    (tmp_path / "ref.txt").write_text("Dropout zeroes random units while training.\n", encoding="utf-8")
    result = cli(["rubrics", "derive", "-q", "What is dropout?", "--grader", "offline", *args])
    assert result.exit_code == 0, result.output
    assert "key_points:" in result.stdout


def test_derive_refuses_both_spellings_at_once(cli):
    result = cli(["rubrics", "derive", "-q", "Q?", "-r", "a", "--answer", "b", "--grader", "offline"])
    assert result.exit_code == 2 and "old name" in result.stderr


def test_report_format_has_no_short_letter(cli, tmp_path):
    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"id": "1", "question_id": "q05", "answer": "Scale for k-NN; trees do not care."}\n')
    assert cli(["batch", answers, "--out", tmp_path / "results.jsonl", "--grader", "offline"]).exit_code == 0
    assert cli(["report", tmp_path / "results.jsonl", "--format", "md"]).exit_code == 0
    result = cli(["report", tmp_path / "results.jsonl", "-f", "md"])
    assert result.exit_code == 2  # -f is --file, which report does not take

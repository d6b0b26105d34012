"""Issue 27 M5: every YAML mlgrade reads refuses aliases instead of expanding them; a 337-byte alias
bomb as `--map-file` is one line at once. Run in a child under a memory and time cap, so the old
code (which expanded it: 39 s, 3 GB) fails instead of taking CI down."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _bomb_map(levels: int = 9) -> str:
    parts = ['&a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghijklm"[: levels - 1]:
        parts.append(f"&{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    return "Response 1: [" + ", ".join(parts) + "]\n"


def test_alias_bomb_map_file_is_refused_at_once(tmp_path):
    (tmp_path / "bomb.yaml").write_text(_bomb_map())
    (tmp_path / "m.csv").write_text("Email,Response 1\na@x.org,scaling matters for kNN\n")
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
            "from mlgrade.cli import main; sys.argv = ['mlgrade'] + sys.argv[1:]; main()")
    env = {**os.environ, "PYTHONPATH": SRC, "MLGRADE_GRADER": "offline", "MLGRADE_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-c", code, "batch", "m.csv", "--out", "o.jsonl", "--map-file", "bomb.yaml",
                           "--dry-run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "alias" in proc.stderr and "bomb.yaml" in proc.stderr


def test_map_file_without_aliases_still_loads(tmp_path):
    from mlgrade.batch.columns import load_map_file

    (tmp_path / "map.yaml").write_text("Response 1: q05\n'Star * rating': '-'\n")
    assert load_map_file(tmp_path / "map.yaml") == {"Response 1": "q05", "Star * rating": "-"}


def test_damaged_cached_derived_rubric_is_derived_again(settings):
    from mlgrade.evaluation.derive import aderive_rubric, derive_key
    from mlgrade.store import Store

    question, reference = "Why scale features for kNN?", "Distances are dominated by large-range features."
    with Store.for_settings(settings) as store:
        first = asyncio.run(aderive_rubric(question, reference, settings=settings, grader_kind="offline", store=store))
        key = derive_key(question, reference, "offline", "")
        store.derived_put(key, "a: &a [1,2]\nb: [*a, *a]\n")
        again = asyncio.run(aderive_rubric(question, reference, settings=settings, grader_kind="offline", store=store))
    assert again == first


def test_a_star_that_is_no_alias_takes_the_fast_loader_and_an_alias_is_still_refused(monkeypatch):
    """Issue 22: rubric files with `3*3` or `zip(*` went through the pure-Python alias-checking
    loader, parsed twice per run (rubrics and topicality). The C parser's events tell them apart."""
    import pytest
    import yaml

    from mlgrade import textfiles

    if not getattr(yaml, "__with_libyaml__", False):
        pytest.skip("PyYAML without libyaml: the slow loader is the only one")
    slow = textfiles.no_alias_loader
    used: list[int] = []
    monkeypatch.setattr(textfiles, "no_alias_loader", lambda s: used.append(1) or slow(s))
    assert textfiles.load_yaml('cues: ["3*3*3*64", "zip(*"]\nn: 2\n') == {"cues": ["3*3*3*64", "zip(*"], "n": 2}
    assert used == []
    with pytest.raises(yaml.YAMLError, match="aliases"):
        textfiles.load_yaml("a: &x [1]\nb: *x\n")
    assert used == [1]
    with pytest.raises(yaml.YAMLError):  # a parse error keeps the slow loader's message and line
        textfiles.load_yaml('a: "3*3\nb: [\n')

"""Issue 12, done-when: one `mlgrade batch` run over every hostile input at once writes each input
row exactly once (graded or skipped), with no traceback; a rerun resumes without doubling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

from hostile_helpers import make_hostile


def _batch(args: list[str], home: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlgrade", "batch", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "MLGRADE_HOME": home, "MLGRADE_GRADER": "offline"})


def test_every_hostile_input_row_appears_exactly_once_in_one_run(tmp_path):
    spec = make_hostile(tmp_path / "hostile", bomb_levels=9)
    inputs, sources = spec[: spec.index("--")], spec[spec.index("--") + 1:]
    out = tmp_path / "results.jsonl"
    res = _batch([*inputs, "--out", str(out)], str(tmp_path / "home"))
    assert res.returncode == 1, res.stderr  # some rows skipped: exit 1 by contract
    assert "Traceback" not in res.stderr + res.stdout
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    seen = Counter(r["source"] for r in rows)
    assert sorted(seen) == sorted(sources) and set(seen.values()) == {1}, seen
    assert {r["outcome"] for r in rows} <= {"graded", "skipped"}
    assert len({r["id"] for r in rows}) == len(rows)
    skipped = {r["source"] for r in rows if r["outcome"] == "skipped"}
    assert len(skipped) == 7 + 2 + 1 + 1  # folder specials, JSONL deep + bad UTF-8, CSV huge field, YAML bomb
    again = _batch([*inputs, "--out", str(out)], str(tmp_path / "home"))
    assert "Traceback" not in again.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(rows)  # resumed: nothing doubled

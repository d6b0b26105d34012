"""A rubric may not name one of its misconceptions after a flag the graders raise about a whole
answer ("off-topic"): with such a rubric an LLM's report of it, unquoted and unverified, held a
correct answer at 15 (the LLM path keeps a rubric's own ids and maps any other to new-...)."""

from __future__ import annotations

import yaml

from mlgrade import scoring
from mlgrade.rubrics import builtin_rubrics_dir, load_dir


def test_the_off_topic_flag_s_id_is_reserved():
    from mlgrade.models import RESERVED_MISCONCEPTION_IDS

    assert scoring.OFF_TOPIC in RESERVED_MISCONCEPTION_IDS


def test_a_rubric_with_a_misconception_named_off_topic_is_refused_with_one_clear_line(tmp_path):
    data = yaml.safe_load((builtin_rubrics_dir() / "q05-feature-scaling.yaml").read_text(encoding="utf-8"))
    data["id"], data["number"] = "q95", 95
    data["misconceptions"][0]["id"] = "off-topic"
    (tmp_path / "q95-scaling.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    rubrics, problems = load_dir(tmp_path)
    assert "q95" not in rubrics
    assert len(problems) == 1 and "reserved" in problems[0] and "off-topic" in problems[0]
    assert "\n" not in problems[0].strip()

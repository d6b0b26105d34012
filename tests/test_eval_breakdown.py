"""`mlgrade eval SET.jsonl --by FIELD`: an expert set's metrics per value of a label field, with
figures checked by hand, the missing-field error and the JSON shape."""

from __future__ import annotations

import json

import pytest

from mlgrade.errors import UsageError
from mlgrade.evaluation.breakdown import breakdown, breakdowns, clip, group_key, parse_fields
from mlgrade.evaluation.expert import expert_metrics
from mlgrade.evaluation.expert import ExpertRow
from mlgrade.models import Grade, MisconceptionFound
from mlgrade.scoring import band_for


def _pair(line, expert, given, labels, flags=(), miscs=(), ok=True):
    row = ExpertRow(line, "q07", "an answer", float(expert), band_for(expert), labels.get("kind", ""), list(flags),
                    f"a{line}", dict(labels))
    grade = (Grade(question_id="q07", outcome="graded", score=given, band=band_for(given),
                   misconceptions=[MisconceptionFound(id=m) for m in miscs]) if ok
             else Grade(question_id="q07", outcome="grader_error", error="boom"))
    return row, grade


PAIRS = [
    _pair(1, 90, 85, {"persona": "calm senior", "question_number": 10}),                    # strong/strong
    _pair(2, 50, 65, {"persona": "calm senior", "question_number": 2}),                     # weak/adequate
    _pair(3, 10, 40, {"persona": "nervous junior", "question_number": 2}, ["x"], ["m1"]),   # poor/weak, flagged
    _pair(4, 5, 35, {"persona": "nervous junior", "question_number": 10}, ["x"]),           # poor/weak, missed
    _pair(5, 30, 0, {"persona": "nervous junior", "question_number": 2}, ok=False),         # not graded
    _pair(6, 0, 20, {"question_number": 2, "persona": ["a", "list"]}),                      # poor/poor
]


def test_figures_per_group_by_hand():
    by = {g["value"]: g for g in breakdown(PAIRS, "persona", metrics=expert_metrics)}
    assert list(by) == ["[\"a\", \"list\"]", "calm senior", "nervous junior"]
    calm, nervous, odd = by["calm senior"], by["nervous junior"], by['["a", "list"]']
    assert calm == {"value": "calm senior", "rows": 2, "n": 2, "band_accuracy": 0.5, "mae": 10.0,
                    "mean_score": 75.0, "mean_expert": 70.0,
                    "misconception_recall": {"n": 0, "flagged": 0, "recall": None}}
    # the ungraded row counts in rows, never in a figure
    assert nervous["rows"] == 3 and nervous["n"] == 2 and nervous["band_accuracy"] == 0.0
    assert nervous["mae"] == 30.0 and nervous["mean_score"] == 37.5 and nervous["mean_expert"] == 7.5
    assert nervous["misconception_recall"] == {"n": 2, "flagged": 1, "recall": 0.5}
    assert odd["n"] == 1 and odd["band_accuracy"] == 1.0 and odd["mae"] == 20.0


def test_numbers_sort_numerically_and_missing_values_group_last():
    pairs = PAIRS + [_pair(7, 60, 60, {"persona": ""})]
    assert [g["value"] for g in breakdown(pairs, "question_number", metrics=expert_metrics)] == ["2", "10", "(none)"]
    q2 = breakdown(PAIRS, "question_number", metrics=expert_metrics)[0]
    assert q2["rows"] == 4 and q2["n"] == 3 and q2["mean_score"] == pytest.approx((65 + 40 + 20) / 3, abs=0.05)
    assert breakdown(pairs, "persona", metrics=expert_metrics)[-1]["value"] == "(none)"


def test_score_map_applies_to_groups():
    lifted = {g["value"]: g for g in breakdown(PAIRS, "persona", score_map=lambda s: s + 5, metrics=expert_metrics)}
    assert lifted["calm senior"]["mean_score"] == 80.0 and lifted["calm senior"]["mae"] == 10.0


def test_a_field_no_answer_has_is_refused():
    with pytest.raises(UsageError, match=r"--by seniority: no answer .* has a 'seniority' field \(fields: kind"):
        breakdowns([_pair(1, 90, 85, {"kind": "excellent"})], ["seniority"], metrics=expert_metrics)


def test_keys_fields_and_clipping():
    assert [group_key(v) for v in (" a ", 3, 2.5, True, None, {"b": 1})] == ["a", "3", "2.5", "true", "(none)",
                                                                          '{"b": 1}']
    assert parse_fields(["kind, persona", "kind"]) == ["kind", "persona"]
    with pytest.raises(UsageError):
        parse_fields([","])
    assert clip("x" * 100, 10) == "x" * 9 + "…" and clip("short", 10) == "short"


GOOD = {"question_number": 7, "answer": "Split by time: train on the past and validate on later data.",
        "expert_score": 40, "kind": "minimal", "persona": "a candidate who talks at great length about "
                                                           "everything except the question that was asked"}


def _write(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_cli_by_json_table_and_missing_field(tmp_path, cli):
    path = _write(tmp_path / "set.jsonl", [
        GOOD,
        {**GOOD, "answer": "Batch normalization rescales activations.", "expert_score": 0, "kind": "off_topic",
         "must_flag": ["off-topic"], "persona": "short"},
        {**GOOD, "question_number": 12, "expert_score": 80, "persona": "short",
         "answer": "Precision is the share of predicted positives that are truly positive."},
    ])
    out = tmp_path / "pred.jsonl"
    res = cli(["eval", path, "--grader", "offline", "--json", "--by", "persona,question_number", "--out", out])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert list(data["by"]) == ["persona", "question_number"]
    short = data["by"]["persona"][1]
    assert short["value"] == "short" and short["n"] == 2 and short["mean_expert"] == 40.0
    scores = [json.loads(line)["score"] for line in out.read_text().splitlines()]
    assert short["mean_score"] == pytest.approx((scores[1] + scores[2]) / 2, abs=0.05)
    assert [g["value"] for g in data["by"]["question_number"]] == ["7", "12"]
    assert data["by"]["persona"][0]["value"] == GOOD["persona"]  # whole in JSON

    table = cli(["eval", path, "--grader", "offline", "--by", "persona"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "by persona" in table.stdout and "a candidate who talks" in table.stdout
    assert "asked" not in table.stdout  # clipped in the table

    missing = cli(["eval", path, "--grader", "offline", "--by", "seniority"])
    assert missing.exit_code == 2 and "no answer in set.jsonl has a 'seniority' field" in missing.stderr
    assert "Traceback" not in missing.output
    csv = tmp_path / "h.csv"
    csv.write_text("question,reference_answer,student_answer,score\nq,r,a,1\n", encoding="utf-8")
    refused = cli(["eval", csv, "--scale", "0-5", "--grader", "offline", "--by", "kind"])
    assert refused.exit_code == 2 and "--by applies to an expert set" in refused.stderr


def test_library_call_breaks_down_and_refuses_before_grading(tmp_path, bank):
    import asyncio

    from mlgrade.config import load_settings
    from mlgrade.evaluation.expert import aevaluate_expert, read_expert_set

    rows = read_expert_set(_write(tmp_path / "s.jsonl", [GOOD, {**GOOD, "kind": "partial", "expert_score": 60}]), bank)
    res = asyncio.run(aevaluate_expert(rows, settings=load_settings(), grader_kind="offline", bank=bank,
                                       dataset="s.jsonl", by=["kind"]))
    assert [(g["value"], g["n"], g["mean_expert"]) for g in res.by["kind"]] == [("minimal", 1, 40.0),
                                                                              ("partial", 1, 60.0)]
    assert res.to_dict()["by"] == res.by

    class Refuses:
        model = ""

        async def agrade(self, *a, **k):  # pragma: no cover - must not be reached
            raise AssertionError("graded before the field was checked")

    with pytest.raises(UsageError, match="no answer in s.jsonl has a 'seniority' field"):
        asyncio.run(aevaluate_expert(rows, settings=load_settings(), grader=Refuses(), bank=bank, dataset="s.jsonl",
                                     by=["seniority"]))

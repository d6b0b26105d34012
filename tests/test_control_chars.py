"""Candidate text cannot drive the terminal or a Markdown viewer: control codes and bidi
overrides are shown as visible escapes, raw HTML in Markdown reports is escaped, JSONL stays raw."""

from __future__ import annotations

import io
import json

import pytest

from mlgrade.textfiles import md_text, safe_text

WIPE = "\x1b[2J\x1b[H FAKE"


@pytest.mark.parametrize("raw,shown", [
    ("a\x1b[2Jb", "a\\x1b[2Jb"),
    ("csi\x9b31m", "csi\\x9b31m"),          # C1 CSI
    ("bell\x07 del\x7f nul\x00", "bell\\x07 del\\x7f nul\\x00"),
    ("evil\u202etxt.exe", "evil\\u202etxt.exe"),  # right-to-left override
    ("iso\u2066x\u2069", "iso\\u2066x\\u2069"),
    ("line\r\nnext\tcol", "line\nnext\tcol"),  # newline and tab stay, CRLF is a newline
    ("over\rwrite", "over\\x0dwrite"),
    ("plain é ✓ 漢字", "plain é ✓ 漢字"),
])
def test_safe_text(raw, shown):
    assert safe_text(raw) == shown


def test_md_text_escapes_html_too():
    assert md_text("<script>alert(1)</script> & \x1b") == "&lt;script&gt;alert(1)&lt;/script&gt; &amp; \\x1b"


def _hostile_record():
    return {"id": "x\x1b]0;pwned\x07", "candidate": "<img src=x onerror=alert(1)>\u202e", "source": "in.jsonl:1",
            "question_id": "q07", "outcome": "graded", "score": 40.0, "band": "weak",
            "judgments": [{"key_point": "forward-chaining", "status": "covered",
                           "evidence": "<script>steal()</script>" + WIPE, "verified": True, "comment": ""}],
            "misconceptions": [{"id": "m", "claim": "shuffle \x1b[31m<b>", "evidence": "", "penalty": 5, "verified": True}],
            "improvements": ["<iframe>" + WIPE], "follow_up": "Why?", "error": None,
            "answer": "<script>steal()</script>" + WIPE}


def test_markdown_report_carries_no_control_bytes_or_raw_html(tmp_path):
    from mlgrade.batch.report import write_report

    results = tmp_path / "r.jsonl"
    results.write_text(json.dumps(_hostile_record()) + "\n")
    md = write_report(results, "md")
    assert "\x1b" not in md and "\x07" not in md and "\u202e" not in md
    assert "<script" not in md and "<img" not in md and "<iframe" not in md and "<b>" not in md
    assert "&lt;script&gt;steal()&lt;/script&gt;\\x1b\\[2J" in md  # brackets escaped: no link can form
    assert json.loads(results.read_text())["answer"].endswith(WIPE)  # the results file keeps the raw text


def test_review_screen_shows_escapes_and_keeps_highlights_aligned(tmp_path, bank):
    from rich.console import Console

    from mlgrade.batch.reviews import ReviewSession
    from mlgrade.commands.review_tui import highlighted_answer, render_item

    rec = _hostile_record()
    rec["answer"] = WIPE + " we train on the past"
    rec["judgments"][0]["evidence"] = "train on the past"
    rec["review"] = {"needed": True, "reasons": ["near_boundary"], "details": {"near_boundary": "why \x1b[2J"}}
    results = tmp_path / "r.jsonl"
    results.write_text(json.dumps(rec) + "\n")
    session = ReviewSession(results, bank=bank)
    item = session.current()
    out = io.StringIO()
    render_item(item, session, Console(file=out, width=120, force_terminal=False))
    screen = out.getvalue()
    assert "\x1b" not in screen and "\x07" not in screen and "\u202e" not in screen
    assert "\\x1b[2J" in screen and "FAKE" in screen
    text = highlighted_answer(item)
    spans = [text.plain[s.start:s.end] for s in text.spans]
    assert "train on the past" in spans


def test_grade_panel_and_errors_pass_no_escape_bytes(cli):
    answer = ("Use forward-chaining splits: train on the past\x1b[2J and test on the future\u202e, never shuffle; "
              "TimeSeriesSplit avoids leakage.")
    res = cli(["grade", "q07", answer, "--grader", "offline"])
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output and "\u202e" not in res.output
    assert "the past\\x1b[2J" in res.output  # the quote is shown, its escape made visible
    raw = json.loads(cli(["grade", "q07", answer, "--grader", "offline", "--json"]).stdout)
    assert any("\x1b[2J" in j["evidence"] for j in raw["judgments"])  # --json is data: left as it is
    bad = cli(["grade", "q\x1b[2J", "answer", "--grader", "offline"])
    assert bad.exit_code == 2 and "\x1b" not in bad.output and "\\x1b" in bad.output


def test_render_grade_escapes_code_test_values_and_quotes():
    from rich.console import Console

    from mlgrade.models import Grade
    from mlgrade.render import render_grade

    g = Grade.model_validate({
        "question_id": "q21", "outcome": "graded", "score": 50, "band": "weak", "grader": "offline",
        "judgments": [{"key_point": "k", "status": "covered", "evidence": "quote" + WIPE, "verified": True, "comment": ""}],
        "code_tests": [{"call": "f('\x1b[2J')", "status": "failed", "expected": "1", "got": "\x1b[31mred\u202e"}],
        "strengths": ["\x1b[H top"], "follow_up": "\x9b2J"})
    out = io.StringIO()
    render_grade(g, None, Console(file=out, width=120, force_terminal=False))
    screen = out.getvalue()
    assert "\x1b" not in screen and "\x9b" not in screen and "\u202e" not in screen
    assert "\\x1b[31mred" in screen and "quote\\x1b[2J" in screen

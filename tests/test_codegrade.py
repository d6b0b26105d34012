"""Coding answers are graded by running them: extraction, per-test results, judgments, wiring."""

from __future__ import annotations

import pytest

from mlgrade.code.codegrade import WHOLE_ANSWER, extract_code, run_rubric_tests
from mlgrade.code.verdicts import apply_code_results
from mlgrade.models import CodeTest, Judgment, KeyPoint, Rubric

FAST = {"timeout": 2.0, "call_timeout": 0.3}


def _rubric(function: str, tests: list[tuple[str, object]]) -> Rubric:
    return Rubric(
        id="t-code", number=0, section="company", kind="coding", difficulty="easy",
        question="Write it.", model_answer="It.", function=function,
        key_points=[KeyPoint(id="correct-output", point="right results", weight=3, essential=True),
                    KeyPoint(id="complexity", point="says O(n)", weight=1)],
        tests=[CodeTest(call=c, expected=e) for c, e in tests], correctness_points=["correct-output"],
    )


SHIFT = _rubric("can_shift", [
    ("can_shift('abid', 'bida')", True), ("can_shift('abc', 'acb')", False), ("can_shift('abc', 'bc')", False),
    ("can_shift('', '')", True), ("can_shift('', 'a')", False), ("can_shift('abc', 'abc')", True),
])
BIGRAMS = _rubric("find_bigrams", [
    ("find_bigrams('the cat sat')", [["the", "cat"], ["cat", "sat"]]), ("find_bigrams('')", []),
    ("find_bigrams('hello')", []), ("find_bigrams('to be or not to be')",
                                    [("to", "be"), ("be", "or"), ("or", "not"), ("not", "to"), ("to", "be")]),
])

IDIOM = "```python\ndef can_shift(a, b):\n    return len(a) == len(b) and b in a + a\n```"
ARTICLE_SHIFT = """def can_shift(a, b):

    if len(a) != len(b):
        return False

    for i in range(len(a)):
        mut_a = a[i:] + a[:i]
        if mut_a == b:
            return True

    return False
"""
NEVER_APPENDS = """My solution:

```python
def bigram(text):
    result = []
    words = text.lower().split()
    for bi in zip(words, words[1:]):
        pass
    return result
```
"""


def statuses(results):
    return [r.status for r in results]


def test_doubling_idiom_passes_every_test():
    results = run_rubric_tests(SHIFT, IDIOM, **FAST)
    assert statuses(results) == ["passed"] * 6


def test_zip_bigrams_pass_including_edge_cases_and_iterators():
    plain = "def find_bigrams(text):\n    words = text.split()\n    return list(zip(words, words[1:]))\n"
    assert statuses(run_rubric_tests(BIGRAMS, plain, **FAST)) == ["passed"] * 4
    lazy = "def find_bigrams(text):\n    words = text.split()\n    return zip(words, words[1:])\n"
    assert statuses(run_rubric_tests(BIGRAMS, lazy, **FAST)) == ["passed"] * 4


def test_article_loop_passes_all_but_two_empty_strings():
    results = run_rubric_tests(SHIFT, ARTICLE_SHIFT, **FAST)
    assert statuses(results) == ["passed", "passed", "passed", "failed", "passed", "passed"]
    assert results[3].expected == "True" and results[3].got == "False"


def test_bigram_that_never_appends_is_caught_via_single_function_alias():
    results = run_rubric_tests(BIGRAMS, NEVER_APPENDS, **FAST)
    assert statuses(results) == ["failed", "passed", "passed", "failed"]
    assert results[0].got == "[]"


def test_articles_printed_bigram_code_is_a_syntax_error():
    printed = ("def bigram(text_list:list):\n    result = []\n    for ls in text_list:\n"
               "        words = ls.lower().split()\n        for bi in zip(words, words[1:]):\n    return result\n")
    results = run_rubric_tests(BIGRAMS, "The article's code:\n\n" + printed, **FAST)
    assert len(results) == 1 and results[0].call == WHOLE_ANSWER and results[0].status == "error"
    assert results[0].error.startswith("code error: SyntaxError")


def test_wrong_types_do_not_pass():
    # 1 for True, a set for a list, tuples pass as lists (converted)
    ints = "def can_shift(a, b):\n    return int(len(a) == len(b) and b in a + a)\n"
    assert "passed" not in statuses(run_rubric_tests(SHIFT, ints, **FAST))
    as_set = "def find_bigrams(t):\n    w = t.split()\n    return set(zip(w, w[1:]))\n"
    assert statuses(run_rubric_tests(BIGRAMS, as_set, **FAST))[0] == "failed"


def test_rigged_equality_cannot_pass():
    rigged = ("class Anything:\n    def __eq__(self, other):\n        return True\n"
              "def can_shift(a, b):\n    return Anything()\n")
    assert "passed" not in statuses(run_rubric_tests(SHIFT, rigged, **FAST))


def test_exceptions_are_reported_with_type_and_message():
    code = "def can_shift(a, b):\n    return a[0] == b[0]\n"
    results = run_rubric_tests(SHIFT, code, **FAST)
    assert results[3].status == "error" and results[3].error.startswith("IndexError: string index out of range")


def test_infinite_loop_is_a_timeout_per_call():
    code = "def can_shift(a, b):\n    if a == '':\n        while True:\n            pass\n    return len(a) == len(b) and b in a + a\n"
    results = run_rubric_tests(SHIFT, code, **FAST)
    assert results[3].status == "timeout" and results[4].status == "timeout"
    assert statuses(results)[:3] == ["passed"] * 3 and results[5].status == "passed"


def test_loop_that_swallows_the_alarm_ends_at_the_wall_clock():
    code = ("def can_shift(a, b):\n    while True:\n        try:\n            while True:\n                pass\n"
            "        except BaseException:\n            pass\n")
    results = run_rubric_tests(SHIFT, code, timeout=1.0, call_timeout=0.2)
    assert statuses(results) == ["timeout"] * 6


def test_huge_allocation_is_reported_as_memory_error():
    code = "def can_shift(a, b):\n    junk = bytearray(1024**3)\n    return True\n"
    results = run_rubric_tests(SHIFT, code, **FAST)
    assert results[0].status == "error" and results[0].error.startswith("MemoryError")


def test_network_and_environment_are_out_of_reach(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    code = ("import os, socket\ndef can_shift(a, b):\n"
            "    assert 'OPENAI_API_KEY' not in os.environ, 'key visible'\n"
            "    socket.create_connection(('127.0.0.1', 9))\n")
    results = run_rubric_tests(SHIFT, code, **FAST)
    assert results[0].status == "error" and "key visible" not in results[0].error, results[0]


def test_print_flood_does_not_break_results():
    code = "def can_shift(a, b):\n    print('x' * 10**6)\n    return len(a) == len(b) and b in a + a\n"
    assert statuses(run_rubric_tests(SHIFT, code, **FAST)) == ["passed"] * 6


@pytest.mark.parametrize("answer, message", [
    ("You rotate the string and compare.", "no Python code"),
    ("```python\ndef a(x): return 1\ndef b(x): return 2\n```", "no function named can_shift"),
    ("```python\nraise RuntimeError('boom')\ndef can_shift(a, b): pass\n```", "code error: the code failed while loading: RuntimeError: boom"),
])
def test_whole_answer_problems_are_one_result(answer, message):
    results = run_rubric_tests(SHIFT, answer, **FAST)
    assert len(results) == 1 and results[0].status == "error" and message in results[0].error


def test_extracts_plain_py_file_inline_code_and_main_guard():
    py_file = "import sys\n\n\ndef can_shift(a, b):\n    return len(a) == len(b) and b in a + a\n\n\nif __name__ == '__main__':\n    print(can_shift(input(), input()))\n"
    assert extract_code(py_file) == py_file
    assert statuses(run_rubric_tests(SHIFT, py_file, **FAST)) == ["passed"] * 6  # main block not run
    inline = "Simply `def can_shift(a, b): return len(a) == len(b) and b in a + a` works."
    assert statuses(run_rubric_tests(SHIFT, inline, **FAST)) == ["passed"] * 6
    assert extract_code("Yes.") is None and extract_code("It is O(n).") is None


def test_unfenced_code_in_prose_keeps_its_imports():
    answer = ("First I check the spec, then:\n\nimport re\nfrom itertools import pairwise as pw\n\n"
              "def find_words(text):\n    return re.findall(r'[a-z]+', text)\n\nIt is linear. I would import nothing else.\n")
    code = extract_code(answer)
    assert code.splitlines()[:2] == ["import re", "from itertools import pairwise as pw"]
    assert "def find_words(text):" in code and "linear" not in code and "import nothing" not in code


def test_method_of_a_single_class_is_found():
    code = "class Solution:\n    def can_shift(self, a, b):\n        return len(a) == len(b) and b in a + a\n"
    assert statuses(run_rubric_tests(SHIFT, code, **FAST)) == ["passed"] * 6


# --------------------------------------------------------------------------- judgments


def _judged():
    return [Judgment(key_point="correct-output", status="covered", evidence="b in a + a"),
            Judgment(key_point="complexity", status="partial", evidence="O(n)")]


def test_all_passed_covers_the_correctness_point():
    out = apply_code_results(SHIFT, _judged(), run_rubric_tests(SHIFT, IDIOM, **FAST))
    assert out[0].status == "covered" and out[0].verified and "running the code" in out[0].comment
    assert out[1].status == "partial" and out[1].comment == ""  # other points untouched


def test_main_cases_pass_but_an_edge_case_fails_keeps_the_core():
    edge_shift = SHIFT.model_copy(update={"tests": [t.model_copy(update={"edge": "''" in t.call}) for t in SHIFT.tests]})
    out = apply_code_results(edge_shift, _judged(), run_rubric_tests(edge_shift, ARTICLE_SHIFT, **FAST))
    assert out[0].status == "covered" and out[0].verified and "the core works" in out[0].comment
    assert "can_shift('', '')" in out[0].comment and "expected True, got False" in out[0].comment
    assert out[0].claimed_status == "covered"


def test_failing_a_main_case_earns_no_credit():
    # 0.1.0 gave partial credit for any passing test: `return True` passed half of them
    out = apply_code_results(SHIFT, _judged(), run_rubric_tests(SHIFT, "def can_shift(a, b):\n    return True\n", **FAST))
    assert out[0].status == "missing" and "fails a main case, so no credit" in out[0].comment


def test_none_passed_or_no_code_is_missing():
    out = apply_code_results(SHIFT, _judged(), run_rubric_tests(SHIFT, "```python\ndef can_shift(a, b): return None\n```", **FAST))
    assert out[0].status == "missing"
    out = apply_code_results(SHIFT, _judged(), run_rubric_tests(SHIFT, "I'd rotate it.", **FAST))
    assert out[0].status == "missing" and "no Python code" in out[0].comment


# --------------------------------------------------------------------------- wiring


def test_grade_runs_the_code_and_no_exec_switch_turns_it_off(monkeypatch, fake_grader):
    from mlgrade.config import load_settings
    from mlgrade.grading import agrade_rubric
    import asyncio

    fake_grader.statuses = {"correct-output": "covered"}
    graded = asyncio.run(agrade_rubric(SHIFT, ARTICLE_SHIFT, settings=load_settings(), grader=fake_grader))
    assert len(graded.code_tests) == 6 and graded.judgments[0].status == "missing"  # fails ('', '')

    monkeypatch.setenv("MLGRADE_EXEC", "0")
    off = asyncio.run(agrade_rubric(SHIFT, ARTICLE_SHIFT, settings=load_settings(), grader=fake_grader))
    assert off.code_tests == [] and off.judgments[0].status == "covered"


def test_bank_coding_rubrics_accept_a_correct_answer(bank):
    answers = {
        "q21": "def find_bigrams(text):\n    words = text.split()\n    return list(zip(words, words[1:]))\n",
        "q24": "def can_shift(a, b):\n    return len(a) == len(b) and b in a + a\n",
    }
    for qid, code in answers.items():
        try:
            rubric = bank.get(qid)
        except Exception:
            pytest.skip(f"{qid} rubric not available")
        if not rubric.tests:
            pytest.skip(f"{qid} has no tests yet")
        results = run_rubric_tests(rubric, code)
        assert statuses(results) == ["passed"] * (len(rubric.tests) + rubric.hidden_tests.count), results


# --------------------------------------------------------------------------- fair scores on the bank


def _offline(qid, answer):
    from mlgrade.config import load_settings
    from mlgrade.grading import grade

    return grade(qid, answer, settings=load_settings(grader="offline"))


def _status(g, kp):
    return next(j for j in g.judgments if j.key_point == kp)


BARE = {
    "q21": "def find_bigrams(text):\n    words = text.split()\n    return list(zip(words, words[1:]))\n",
    "q24": "def can_shift(a, b):\n    return len(a) == len(b) and b in a + a\n",
}


@pytest.mark.parametrize("qid", ["q21", "q24"])
def test_a_correct_function_alone_reaches_the_adequate_band(qid):
    g = _offline(qid, BARE[qid])
    assert all(t.status == "passed" for t in g.code_tests) and any(t.hidden for t in g.code_tests)
    assert g.band in ("adequate", "strong"), (g.score, g.band)  # 0.1.0: 33 (q21) and 50 (q24), weak


def test_q24_has_anagram_but_not_rotation_cases(bank):
    calls = {t.call: t.expected for t in bank.get("q24").tests}
    assert calls["can_shift('aabb', 'abab')"] is False and calls["can_shift('abcd', 'acbd')"] is False


@pytest.mark.parametrize("answer", [
    "def can_shift(a, b):\n    return sorted(a) == sorted(b)\n",  # 0.1.0: 14/15 passed, partial credit
    "def can_shift(a, b):\n    return True\n",
    "from collections import Counter\ndef can_shift(a, b):\n    return Counter(a) == Counter(b)\n",
])
def test_q24_functions_failing_real_cases_get_no_credit(answer):
    g = _offline("q24", answer)
    assert _status(g, "correct-output").status == "missing"
    assert g.band in ("poor", "weak")


def test_q24_edge_case_point_follows_the_edge_tests():
    right = _offline("q24", BARE["q24"])
    edge = _status(right, "length-guard-edge-cases")
    assert edge.status == "covered" and "edge-case tests passed" in edge.comment
    loop = _offline("q24", ARTICLE_SHIFT)  # right algorithm, wrong on two empty strings
    assert _status(loop, "correct-output").status == "covered"           # the core works (issue 23)
    assert 45.0 <= loop.score <= 59.0 and loop.band == "weak"
    edge = _status(loop, "length-guard-edge-cases")
    assert edge.status == "missing" and "can_shift('', '')" in edge.comment
    no_len = _offline("q24", "def can_shift(a, b):\n    return b in a + a\n")
    assert _status(no_len, "correct-output").status == "covered"
    assert _status(no_len, "length-guard-edge-cases").status == "missing"
    assert no_len.score <= 59.0                                            # a failing case: not adequate


def test_q21_contract_is_in_the_question(bank):
    q = " ".join(bank.get("q21").question.split())
    assert "(word, next_word) tuples" in q and "standard library" in q


def test_q21_bigrams_as_strings_get_a_precise_comment_not_a_stub_score():
    strings = "def find_bigrams(text):\n    w = text.split()\n    return [w[i] + ' ' + w[i + 1] for i in range(len(w) - 1)]\n"
    g = _offline("q21", strings)
    j = _status(g, "correct-output")
    assert j.status == "missing"
    assert "each bigram is returned as one string such as 'the cat'" in j.comment
    assert "(word, next_word) tuples" in j.comment
    stub = _offline("q21", "def find_bigrams(text):\n    return []\n")
    assert _status(stub, "correct-output").status == "missing"
    assert _status(stub, "edge-cases").status != "covered" or "Verified" not in _status(stub, "edge-cases").comment


def test_q21_split_on_single_space_keeps_the_core_and_misses_the_whitespace_case():
    g = _offline("q21", "def find_bigrams(text):\n    words = text.split(' ')\n    return list(zip(words, words[1:]))\n")
    assert _status(g, "correct-output").status == "covered"
    assert _status(g, "edge-cases").status == "missing"


# --------------------------------------------------------------------------- hidden cases


def test_hidden_cases_come_from_a_seed_that_is_fresh_every_run(bank):
    # 2026-11-30 review: a seed derived from the answer let a candidate rewrite a comment until the
    # generated cases suited a wrong function (2 tries for q24, 904 for q21); now each run draws one
    from mlgrade.code.hidden import generate

    assert generate("rotations", 8, 1) == generate("rotations", 8, 1)
    assert generate("rotations", 8, 1) != generate("rotations", 8, 2)
    rubric = bank.get("q24")
    a = [t.call for t in run_rubric_tests(rubric, BARE["q24"], seed=1) if t.hidden]
    assert a == [t.call for t in run_rubric_tests(rubric, BARE["q24"], seed=1) if t.hidden]
    assert len(a) == rubric.hidden_tests.count and a != [t.call for t in run_rubric_tests(rubric, BARE["q24"], seed=2) if t.hidden]
    runs = [[t.call for t in run_rubric_tests(rubric, BARE["q24"]) if t.hidden] for _ in range(2)]
    assert runs[0] != runs[1]


def test_rotation_cases_include_same_letter_non_rotations():
    from mlgrade.code.hidden import _is_rotation, generate

    cases = generate("rotations", 8, 7)
    anagrams = [c for c in cases if sorted(c.args[0]) == sorted(c.args[1]) and not _is_rotation(*c.args)]
    assert len(anagrams) >= 2 and any(_is_rotation(*c.args) for c in cases)


def test_sentence_cases_include_irregular_whitespace_and_repeats():
    from mlgrade.code.hidden import generate

    texts = [c.args[0] for c in generate("sentences", 8, 3)]
    assert any("\t" in t or "\n" in t or "  " in t for t in texts)
    assert any(len(t.split()) != len(set(t.split())) for t in texts)


@pytest.mark.parametrize("qid", ["q21", "q24"])
def test_reference_solution_agrees_with_the_visible_tests(bank, qid):
    rubric = bank.get(qid)
    results = run_rubric_tests(rubric, rubric.reference_solution)
    assert [r.status for r in results] == ["passed"] * len(results)


@pytest.mark.parametrize("qid, wrong", [
    ("q24", "def can_shift(a, b):\n    if len(a) > 12:\n        return True\n    return len(a) == len(b) and b in a + a\n"),
    ("q24", "import re\ndef can_shift(a, b):\n    a, b = re.sub('[^a-z]', '', a), re.sub('[^a-z]', '', b)\n"
            "    return len(a) == len(b) and b in a + a\n"),
    ("q21", "def find_bigrams(text):\n    w = text.split()\n    return list(zip(w, w[1:]))[:12]\n"),
    ("q21", "def find_bigrams(text):\n    w = text.split(' ')\n    return list(zip(w, w[1:]))\n"),
])
def test_hidden_cases_catch_answers_that_break_the_contract_off_the_easy_inputs(bank, qid, wrong):
    # 2026-11-30 second review: every case was short, so going wrong past 12 items passed
    # everything (65 on q21); q24's strings were letters only. (Casing and punctuation in q21 are
    # the candidate's stated choice, and in q24 case sensitivity is: no case depends on them.)
    for seed in (1, 2, 3):
        results = run_rubric_tests(bank.get(qid), wrong, seed=seed)
        assert any(r.hidden and r.status != "passed" for r in results), seed


def test_numbers_compare_exactly_for_ints_and_never_crash_on_huge_ones():
    from mlgrade.code.codegrade import _same

    assert not _same(10**12 + 999, 10**12) and _same(10**12, 10**12)
    assert not _same(10**400, 1.0) and not _same(1.0, 10**400)  # OverflowError crashed `grade`
    assert _same(0.1 + 0.2, 0.3) and not _same(1, True)


def test_offline_feedback_follows_the_points_the_run_decided(bank):
    # new-user trial: a point the tests proved (edge cases) was still listed under "To improve"
    from mlgrade.config import load_settings
    from mlgrade.grading import grade

    g = grade("q24", "def can_shift(a, b):\n    return len(a) == len(b) and b in a + a\n",
              settings=load_settings(grader="offline"))
    proved = [j for j in g.judgments if j.verified and j.status == "covered" and j.comment.startswith("Verified")]
    assert len(proved) >= 2
    for j in proved:
        point = bank.get("q24").key_point(j.key_point).point.strip()
        assert not any(point in line for line in g.improvements), (point, g.improvements)
        assert any(point in line for line in g.strengths)


def test_character_pairs_get_a_precise_hint():
    from mlgrade.code.verdicts import diagnose
    from mlgrade.models import CodeTestResult

    r = CodeTestResult(call="find_bigrams('ab cd')", status="failed", expected="[['ab', 'cd']]",
                       got="[['a', 'b'], ['b', ' '], [' ', 'c'], ['c', 'd']]")
    assert "characters" in diagnose(r)


def test_a_long_list_of_failing_cases_is_shown_short_on_a_terminal():
    # new-user trial: a q21 function walking characters printed ~150 lines of character pairs
    import io

    from rich.console import Console

    from mlgrade.models import CodeTestResult, Grade
    from mlgrade.render import MAX_CASES_SHOWN, render_grade

    got = repr([["x", "y"]] * 200)
    tests = [CodeTestResult(call=f"find_bigrams('w{i} v{i}')", status="failed", expected="[['a', 'b']]", got=got,
                            hidden=i > 8) for i in range(25)]
    g = Grade(question_id="q21", outcome="graded", score=0.0, band="poor", code_tests=tests)
    buf = io.StringIO()
    render_grade(g, None, Console(file=buf, width=100))
    text = buf.getvalue()
    assert "0 of 25 cases passed" in text and f"{25 - MAX_CASES_SHOWN} more not passed" in text
    assert len(text.splitlines()) < 60


def test_code_that_is_the_doubling_idiom_is_credited_for_it(bank):
    # issue 26: `return len(a) == len(b) and b in a + a` with no prose got "½ doubling-idiom" and
    # "Develop: it uses (or explains) the idiom …": the code is the idiom
    from mlgrade.graders.offline import OfflineGrader
    from mlgrade.models import CodeTestResult

    answer = "def can_shift(a, b):\n    return len(a) == len(b) and b in a + a\n"
    facts = [CodeTestResult(call="can_shift('abc', 'cab')", status="passed"),
             CodeTestResult(call="can_shift('x1', '1x')", status="passed", hidden=True)]
    judged = OfflineGrader().judge(bank.get("q24"), answer, facts=facts)
    status = {j.key_point: j.status for j in judged.judgments}
    assert status["doubling-idiom"] == "covered"
    assert not any("idiom" in line for line in judged.improvements)

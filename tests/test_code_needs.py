"""Code that needs a library the sandbox lacks is "not verified here", not wrong (issue 23): the
correctness points are judged from the text, a review flag asks for a check by hand, and nothing
else (an unlisted module, a hand-raised error, a failure after the import) dodges the tests."""

from __future__ import annotations

import pytest

from mlgrade.code import codegrade
from mlgrade.code.needs import LIBRARIES, NOT_VERIFIED, missing_library
from mlgrade.models import Assessment, CodeTestResult, Judgment

NLTK_Q21 = """In practice I wouldn't reinvent this, NLTK already provides it:

```python
from nltk import bigrams

def find_bigrams(text):
    return list(bigrams(text.split()))
```

`nltk.bigrams` takes any sequence of tokens and yields consecutive pairs, so "the cat sat" becomes
[('the', 'cat'), ('cat', 'sat')]. Bigrams like these are the building block of n-gram language
models, where you estimate P(word | previous word) from their counts.
"""
MISSING = "No module named '{}'"


# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize("code, message, library", [
    ("from nltk import bigrams\ndef f(t): return list(bigrams(t))\n", MISSING.format("nltk"), "nltk"),
    ("import numpy as np\ndef f(t): return np.array(t)\n", MISSING.format("numpy"), "numpy"),
    ("from sklearn.metrics import f1_score\nscore = f1_score\n", MISSING.format("sklearn"), "scikit-learn"),
    ("import nltk.util\ndef f(t): return nltk.util.bigrams(t)\n", MISSING.format("nltk.util"), "nltk"),
])
def test_a_listed_library_imported_at_load_is_the_sandboxs_lack(code, message, library):
    assert missing_library(code, "ModuleNotFoundError", message) == library


@pytest.mark.parametrize("code, error_type, message", [
    ("import my_fake_module\n", "ModuleNotFoundError", MISSING.format("my_fake_module")),  # not on the list
    ("import json\n", "ModuleNotFoundError", MISSING.format("json")),                       # stdlib: the sandbox has it
    ("raise ModuleNotFoundError(\"No module named 'numpy'\")\n", "ModuleNotFoundError",
     MISSING.format("numpy")),                                                              # hand-raised, no import
    ("def f(t):\n    import numpy\n", "ModuleNotFoundError", MISSING.format("numpy")),       # not at load
    ("if False:\n    import numpy\nraise ModuleNotFoundError(\"No module named 'numpy'\")\n",
     "ModuleNotFoundError", MISSING.format("numpy")),                                       # a dead import
    ("import numpy\n", "ImportError", MISSING.format("numpy")),
    ("import numpy\n", "ModuleNotFoundError", "No module named 'numpy' (and then some)"),
    ("from .numpy import x\n", "ModuleNotFoundError", MISSING.format("numpy")),             # relative
    ("import numpy\ndef f(t): return [(w, w) for w in t]\n", "ModuleNotFoundError",
     MISSING.format("numpy")),                                                              # never used
    ("import numpy as np\ndef f(t): return numpy\n", "ModuleNotFoundError",
     MISSING.format("numpy")),                                                              # bound as np, np unread
])
def test_anything_else_is_the_codes_error(code, error_type, message):
    assert missing_library(code, error_type, message) is None


def test_the_list_holds_no_standard_library_module():
    import sys

    assert not set(LIBRARIES) & sys.stdlib_module_names


# --------------------------------------------------------------------------- the verdict from a run


@pytest.fixture
def load_fails(monkeypatch):
    """The candidate's run stops while loading with the given error (no sandbox needed)."""
    def make(error_type: str, message: str):
        def fake_run(code, function, calls, **kw):
            return {"load": "error", "type": error_type, "message": message}, {}, {}
        monkeypatch.setattr(codegrade, "_run_candidate", fake_run)
        monkeypatch.setattr(codegrade, "_reference_run", lambda *a, **k: {})
    return make


def test_run_of_code_needing_nltk_is_not_verified_not_an_error(bank, load_fails):
    load_fails("ModuleNotFoundError", MISSING.format("nltk"))
    results = codegrade.run_rubric_tests(bank.get("q21"), NLTK_Q21)
    assert [(r.call, r.status) for r in results] == [(codegrade.WHOLE_ANSWER, "not-run")]
    assert results[0].error == f"{NOT_VERIFIED}: it needs nltk, which the sandbox does not provide"


def test_run_of_code_needing_an_unlisted_module_is_still_an_error(bank, load_fails):
    load_fails("ModuleNotFoundError", MISSING.format("my_fake_module"))
    results = codegrade.run_rubric_tests(bank.get("q21"), "import my_fake_module\ndef find_bigrams(t):\n    return []\n")
    assert results[0].status == "error" and "my_fake_module" in results[0].error


def _not_verified() -> list[CodeTestResult]:
    return [CodeTestResult(call=codegrade.WHOLE_ANSWER, status="not-run",
                           error=f"{NOT_VERIFIED}: it needs nltk, which the sandbox does not provide")]


@pytest.mark.parametrize("claimed", ["covered", "partial", "missing"])
def test_the_graders_reading_stands_flagged_for_a_check_by_hand(bank, claimed):
    from mlgrade.grading import finalize

    rubric = bank.get("q21")
    point = rubric.correctness_points[0]
    judgments = [Judgment(key_point=kp.id, status=claimed if kp.id == point else "missing",
                          evidence="return list(bigrams(text.split()))" if kp.id == point and claimed != "missing" else "")
                 for kp in rubric.key_points]
    g = finalize(rubric, NLTK_Q21, Assessment(judgments=judgments), grader="llm", code_tests=_not_verified())
    plain = finalize(rubric, NLTK_Q21, Assessment(judgments=judgments), grader="llm")
    j = next(x for x in g.judgments if x.key_point == point)
    assert j.status == claimed and "judged from the text only" in j.comment and "Verified by running" not in j.comment
    assert g.score == plain.score
    assert "code_conflict" not in g.review.reasons
    assert "code_unverified" in g.review.reasons and "nltk" in g.review.details["code_unverified"]


def test_no_sandbox_is_not_flagged_as_a_missing_library(bank):
    from mlgrade.grading import finalize

    rubric = bank.get("q21")
    no_box = [CodeTestResult(call=codegrade.WHOLE_ANSWER, status="not-run", error=codegrade.NO_SANDBOX)]
    g = finalize(rubric, NLTK_Q21, Assessment(judgments=[]), grader="llm", code_tests=no_box)
    assert "code_unverified" not in g.review.reasons


def test_the_llm_is_told_why_the_code_was_not_run():
    from mlgrade.graders.prompts import facts_block

    text = facts_block(_not_verified())
    assert "nltk, which the sandbox does not provide" in text and "no sandbox is available" not in text


# --------------------------------------------------------------------------- end to end, in the sandbox


def _grade(qid, answer, monkeypatch, exec_code=True):
    from mlgrade.config import load_settings
    from mlgrade.grading import grade

    monkeypatch.setenv("MLGRADE_EXEC", "1" if exec_code else "0")
    return grade(qid, answer, settings=load_settings(grader="offline"))


def _sandboxed(g):
    if g.code_tests and g.code_tests[0].error.startswith(codegrade.NO_SANDBOX):
        pytest.skip("no sandbox on this machine")
    return g


def test_q21_nltk_answer_is_scored_as_with_execution_off(monkeypatch):
    g = _sandboxed(_grade("q21", NLTK_Q21, monkeypatch))
    off = _grade("q21", NLTK_Q21, monkeypatch, exec_code=False)
    assert [t.status for t in g.code_tests] == ["not-run"] and "nltk" in g.code_tests[0].error
    assert g.score == off.score and g.band == off.band      # main 7fc7633: 11.7 against 26.7
    assert "code_conflict" not in g.review.reasons and "code_unverified" in g.review.reasons


def test_q21_unlisted_module_still_fails_its_tests(monkeypatch):
    g = _sandboxed(_grade("q21", NLTK_Q21.replace("from nltk import", "from nltk_bigrams_helper import"), monkeypatch))
    assert [t.status for t in g.code_tests] == ["error"] and "while loading" in g.code_tests[0].error
    assert next(j for j in g.judgments if j.key_point == "correct-output").status == "missing"
    assert "code_unverified" not in g.review.reasons


@pytest.mark.parametrize("answer", [
    # the import fails when the function is called, not at load: a per-call error, as before
    "def find_bigrams(text):\n    import nltk\n    return list(nltk.bigrams(text.split()))\n",
    # the listed import is guarded, the code loads and its wrong function is tested
    "try:\n    import numpy\nexcept ImportError:\n    numpy = None\n\ndef find_bigrams(text):\n    return []\n",
])
def test_q21_failure_after_a_listed_import_still_fails(monkeypatch, answer):
    g = _sandboxed(_grade("q21", answer, monkeypatch))
    assert len(g.code_tests) > 1 and any(t.status != "passed" for t in g.code_tests if not t.edge)
    assert next(j for j in g.judgments if j.key_point == "correct-output").status == "missing"
    assert "code_unverified" not in g.review.reasons


def test_q21_wrong_code_with_an_unused_listed_import_still_fails(monkeypatch):
    """An `import numpy` nothing reads does not turn wrong code into "not verified" (it scored
    adequate, 65, instead of weak before this rule)."""
    wrong = "import numpy\n\ndef find_bigrams(text):\n    return [(w, w) for w in text.split()]\n"
    g = _sandboxed(_grade("q21", wrong, monkeypatch))
    assert [t.status for t in g.code_tests] == ["error"] and "numpy" in g.code_tests[0].error
    assert next(j for j in g.judgments if j.key_point == "correct-output").status == "missing"
    assert "code_unverified" not in g.review.reasons


def test_batch_code_lane_says_the_same(tmp_path, cli):
    """The batch runs code in warm background hosts: the same verdict, the same flag, and the
    code_conflict flag stays off."""
    import json

    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"question_id": "q21", "answer": NLTK_Q21}) + "\n")
    out = tmp_path / "out.jsonl"
    res = cli(["batch", inp, "--out", out, "--grader", "offline"], env={"MLGRADE_EXEC": "1"})
    assert res.exit_code == 0, res.output
    line = json.loads(out.read_text().splitlines()[0])
    tests = line["code_tests"]
    if tests and tests[0]["error"].startswith(codegrade.NO_SANDBOX):
        pytest.skip("no sandbox on this machine")
    assert [t["status"] for t in tests] == ["not-run"] and "nltk" in tests[0]["error"]
    assert "code_unverified" in line["review"]["reasons"] and "code_conflict" not in line["review"]["reasons"]


def test_another_graders_judgment_of_the_nltk_code_stands(monkeypatch, fake_grader, bank):
    """The LLM path: the grader calls the code correct; the run cannot say otherwise, so the point
    stays covered (main 7fc7633: missing, with a code_conflict flag)."""
    import asyncio

    from mlgrade.config import load_settings
    from mlgrade.grading import agrade_rubric

    monkeypatch.setenv("MLGRADE_EXEC", "1")
    fake_grader.statuses = {"correct-output": "covered"}
    g = _sandboxed(asyncio.run(agrade_rubric(bank.get("q21"), NLTK_Q21, settings=load_settings(), grader=fake_grader)))
    assert [t.status for t in g.code_tests] == ["not-run"]
    assert next(j for j in g.judgments if j.key_point == "correct-output").status == "covered"
    assert "code_conflict" not in g.review.reasons
    assert "code_unverified" in g.review.reasons


def test_a_batch_reuses_a_grade_whose_code_needs_a_missing_library(bank):
    # the sandbox never provides nltk, so the next run would only pay for the same request again;
    # "no sandbox here" is this machine at that moment, so that grade is still not reused
    from mlgrade.batch.runner import _cached_grade
    from mlgrade.grading import finalize

    rubric = bank.get("q21")
    needs = finalize(rubric, NLTK_Q21, Assessment(judgments=[]), grader="llm", code_tests=_not_verified())
    no_box = finalize(rubric, NLTK_Q21, Assessment(judgments=[]), grader="llm",
                      code_tests=[CodeTestResult(call=codegrade.WHOLE_ANSWER, status="not-run", error=codegrade.NO_SANDBOX)])
    cached = _cached_grade(needs.model_dump(mode="json"))
    assert cached is not None and cached.code_tests == needs.code_tests and cached.score == needs.score
    assert _cached_grade(no_box.model_dump(mode="json")) is None

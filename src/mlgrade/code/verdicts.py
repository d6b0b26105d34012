"""Turn a run's results into judgments: the correctness and edge-case key points of a coding
question are decided by the cases the code passed (codegrade.py runs them), and the comments say
which case failed and, for common wrong shapes of a result, how.
"""

from __future__ import annotations

import ast
from typing import Any

from ..models import CodeTestResult, Judgment, Rubric
from .codegrade import TAMPERED, WHOLE_ANSWER

TAMPERED_START = TAMPERED.split("(")[0]


def _case(r: CodeTestResult) -> str:
    return ("hidden case " if r.hidden else "") + r.call


def describe_results(results: list[CodeTestResult]) -> str:
    """One line per test, for comments (the candidate's values included: not for prompts)."""
    lines = []
    for r in results:
        if r.status == "passed":
            lines.append(f"{_case(r)} -> passed")
        elif r.status == "failed":
            lines.append(f"{_case(r)} -> FAILED: expected {r.expected}, got {r.got}{diagnose(r)}")
        else:
            lines.append(f"{_case(r)} -> {r.status.upper()}: {r.error}")
    return "\n".join(lines)


def diagnose(r: CodeTestResult) -> str:
    """A precise hint for common wrong shapes of a result (empty when none applies)."""
    if r.status != "failed":
        return ""
    try:
        want, got = ast.literal_eval(r.expected), ast.literal_eval(r.got)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return ""
    pairs = isinstance(want, list) and want and all(isinstance(p, list) and len(p) == 2 for p in want)
    if pairs and isinstance(got, list) and got and all(isinstance(p, list) and len(p) == 2
                                                        and all(isinstance(c, str) and len(c) == 1 for c in p) for p in got):
        return " (pairs of characters: the function walks the string's characters, not its words; split it first)"
    if pairs and isinstance(got, list) and got and all(isinstance(x, str) for x in got):
        if all(len(x.split()) == 2 for x in got):
            return (" (each bigram is returned as one string such as "
                    f"{got[0]!r}; the contract is a list of (word, next_word) tuples)")
        return " (a list of strings, where a list of (word, next_word) tuples is expected)"
    if isinstance(want, list) and want and got == []:
        return " (returns an empty list)"
    if isinstance(want, bool) and not isinstance(got, bool):
        return f" (returns {type(got).__name__}, not the bool True/False)"
    if isinstance(want, list) and isinstance(got, list) and len(want) != len(got) \
            and all(x in want for x in got if isinstance(x, list)):
        return " (pairs missing or dropped: all bigrams, repeats included, are expected in order)"
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got) and sorted(map(repr, want)) == sorted(map(repr, got)):
        return " (the right items in the wrong order)"
    return ""


def _first(results: list[CodeTestResult]) -> CodeTestResult | None:
    return next((r for r in results if r.status != "passed"), None)


def _counts(results: list[CodeTestResult]) -> str:
    hidden = sum(r.hidden for r in results)
    visible = len(results) - hidden
    passed = sum(r.status == "passed" for r in results)
    return f"{passed} of {len(results)} tests passed ({visible} from the rubric, {hidden} hidden random cases)"


def apply_code_results(rubric: Rubric, judgments: list[Judgment], results: list[CodeTestResult]) -> list[Judgment]:
    """Decide the correctness points, and the edge-case points, from the run.

    Correctness: every main (non-edge) case passed -> covered, the core works (a failing edge case
    costs the edge-case points, not the core); a main case failed -> missing: a function that gets the real cases wrong
    earns nothing, however many trivial ones it passes. Edge-case points follow the edge tests
    when the main cases pass (a stub that returns [] passes "empty input" cases by accident, so
    then they say nothing). When the code could not be run because no sandbox is available, the
    grader's reading of the text stands and the comment says the code was not run."""
    if not results or not rubric.correctness_points:
        return judgments
    whole = len(results) == 1 and results[0].call == WHOLE_ANSWER
    updates: dict[str, dict[str, Any]] = {}
    if whole and results[0].status == "not-run":
        for j in judgments:
            if j.key_point in rubric.correctness_points:
                updates[j.key_point] = {"comment": f"{results[0].error}; judged from the text only. {j.comment}".strip()}
        return [j.model_copy(update=updates[j.key_point]) if j.key_point in updates else j for j in judgments]
    if whole:
        why = results[0].error
        status, summary = "missing", (f"no credit: {why}" if why.startswith(TAMPERED_START) else f"no test could run: {why}")
        edge_status = edge_summary = None
    else:
        main = [r for r in results if not r.edge]
        edges = [r for r in results if r.edge]
        main_fail, edge_fail = _first(main), _first(edges)
        if main_fail is None and edge_fail is None:
            status, summary = "covered", f"all {len(results)} tests passed ({_counts(results).split('(')[1]}"
        elif main_fail is None:
            status, summary = "covered", f"{_counts(results)}; the main cases pass, so the core works, but an edge case fails: {describe_results([edge_fail])}"
        else:
            status, summary = "missing", f"{_counts(results)}; it fails a main case, so no credit: {describe_results([main_fail])}"
        edge_status = edge_summary = None
        if main_fail is None and edges:
            if edge_fail is None:
                edge_status, edge_summary = "covered", f"all {len(edges)} edge-case tests passed"
            else:
                edge_status, edge_summary = "missing", f"an edge-case test fails: {describe_results([edge_fail])}"
    comment = f"Verified by running the code: {summary}."
    out = []
    for j in judgments:
        if j.key_point in rubric.correctness_points:
            j = j.model_copy(update={"status": status, "verified": True, "comment": comment,
                                     "claimed_status": j.claimed_status or j.status,
                                     "evidence": j.evidence if status != "missing" else ""})
        elif j.key_point in rubric.edge_case_points and edge_status is not None:
            j = j.model_copy(update={"status": edge_status, "verified": True,
                                     "comment": f"Verified by running the code: {edge_summary}.",
                                     "claimed_status": j.claimed_status or j.status,
                                     "evidence": j.evidence if edge_status != "missing" else ""})
        out.append(j)
    return out

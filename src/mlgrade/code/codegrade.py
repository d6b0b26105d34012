"""Grade coding answers by running them: extract the code, run the rubric's tests and hidden
randomized cases in the sandbox, and turn the results into judgments of the rubric's
correctness and edge-case key points.

What the candidate's code can and cannot touch: it runs in a wasm instance of its own (see
sandbox.py). The parent sends only the call arguments; the instance sends back, per call, the
JSON (or a truncated repr) of the returned value or the exception's type and message. The
expected values never enter it: the visible ones stay in the parent, and the hidden cases are
generated in the parent from a seed, with their expected values computed by the rubric's
reference solution in a separate instance that never sees the candidate's code. Comparison
happens in the parent.

The result channel: calls are fed in lockstep (call k's arguments exist in the instance only
after it has written its record for call k-1), and the parent takes exactly one record per call,
in order. A record the harness did not write beside its own (a second load record, a result for
another call, an unreadable line) marks the run as tampered and nothing from it counts. No
channel inside one interpreter can be secret from the code sharing it, so code that silences the
harness and writes the records itself is possible; but then each value it writes was made after
it saw that call's arguments, which is what answering the call means, and to pass the hidden
cases it has to answer them right.

grading.py calls `run_rubric_tests` before the grader (its results are the grader's `facts`)
and `verdicts.apply_code_results` in `finalize`, so every grader's correctness verdict rests on the run.
"""

from __future__ import annotations

import ast
import hashlib
import json
import marshal
import math
import random
import secrets
from pathlib import Path
from typing import Any

from ..models import CodeTestResult, Rubric
from .extract import extract_code
from .hidden import HiddenCase, generate
from .sandbox import DEFAULT_TIMEOUT, Guest, GuestResult, Limits, SandboxError, SandboxUnavailable, run_guests

CALL_TIMEOUT = 1.0  # per test call; the rubric tests are tiny, so a correct answer needs milliseconds
MAX_SHOWN = 300  # characters of a value shown in a result
MAX_RELAUNCH = 2  # fresh instances started after a call times out, for the calls after it
WHOLE_ANSWER = "(answer)"  # the `call` of a result that concerns the whole answer, not one test
NO_SANDBOX = "code not run: no sandbox available"


_HARNESS = (Path(__file__).with_name("guest_harness.py")).read_text(encoding="utf-8")



# --------------------------------------------------------------------------- running


def _plain_expected(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return [_plain_expected(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain_expected(x) for k, x in v.items()}
    return v


def _same(a: Any, b: Any) -> bool:
    """Equality of plain values that does not let True pass for 1 (or the reverse)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _show(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= MAX_SHOWN else s[:MAX_SHOWN] + "…"


def _whole(status: str, error: str) -> list[CodeTestResult]:
    return [CodeTestResult(call=WHOLE_ANSWER, status=status, error=error)]  # type: ignore[arg-type]


def _syntax_error(code: str) -> str | None:
    try:
        ast.parse(code)
    except SyntaxError as e:
        where = f" (line {e.lineno})" if e.lineno else ""
        return f"SyntaxError: {e.msg}{where}" + (f": {e.text.strip()}" if e.text and e.text.strip() else "")
    except (ValueError, RecursionError, MemoryError) as e:
        return f"the code cannot be parsed: {type(e).__name__}: {e}"
    return None


def _call_spec(call: str, function: str) -> dict:
    """A rubric test's call as plain arguments when it is `function(literal, ...)`, so the
    instance needs no eval; otherwise the expression itself (custom rubrics may write others)."""
    try:
        node = ast.parse(call, mode="eval").body
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == function \
                and not node.keywords:
            return {"args": [ast.literal_eval(a) for a in node.args]}
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        pass
    return {"expr": call}


def answer_seed(rubric: Rubric, code: str) -> int:
    """The hidden cases' seed for one answer: fixed for the same answer (so a grade is
    reproducible) and unknowable in advance (changing the code to fit the cases changes them)."""
    return int.from_bytes(hashlib.sha256(f"{rubric.id}\0{code}".encode("utf-8", "surrogatepass")).digest()[:8], "big")


def _guest(tag: str, code: str, function: str, calls: list[tuple[int, dict]], call_timeout: float) -> Guest:
    job = {"tag": tag, "code": code, "function": function}
    feed = tuple(marshal.dumps({"i": i, **c}, 4) for i, c in calls)
    return Guest(program=_HARNESS, stdin=marshal.dumps(job, 4), step_marker=tag, step_timeout=call_timeout, feed=feed)


class _Records:
    """What one run's record lines say, read strictly: the harness writes a load record, then one
    result per call in the order the calls were fed. Anything else on the tagged channel (a second
    load record, a result for another call, an unreadable record) was written by the code, so
    the run is `tampered` and none of its results count."""

    def __init__(self, run: GuestResult, tag: str, order: list[int]) -> None:
        self.load: dict | None = None
        self.results: dict[int, dict] = {}
        self.tampered = ""
        prefix = tag + " "
        for line in run.stdout.splitlines():
            if not line.startswith(prefix):
                continue
            problem = self._take(line[len(prefix):], order)
            if problem:
                self.tampered = problem
                self.results = {}
                return

    def _take(self, text: str, order: list[int]) -> str:
        try:
            rec = json.loads(text)
        except (ValueError, RecursionError):
            return "an unreadable record"
        if not isinstance(rec, dict):
            return "an unreadable record"
        if self.load is None:
            if "load" not in rec:
                return "a result before the code was loaded"
            self.load = rec
            return ""
        n = len(self.results)
        if "load" in rec or n >= len(order) or rec.get("i") != order[n]:
            return "a record the harness did not write"
        self.results[order[n]] = rec
        return ""

    def running(self, order: list[int]) -> int | None:
        """The call that was under way when the run stopped: the one fed after the last result."""
        n = len(self.results)
        return order[n] if self.load is not None and n < len(order) and not self.tampered else None


def _crash_reason(run: GuestResult, timeout: float) -> tuple[str, str]:
    """(status, message) for calls that got no result because the instance stopped."""
    kind = run.interrupted
    if kind in ("timeout", "fuel"):
        return "timeout", f"not finished: the run hit its {timeout:g} s / CPU budget"
    if kind == "step-timeout":
        return "timeout", "the call did not return in time (infinite loop?)"
    if kind == "disk":
        return "error", "code error: the code wrote more to disk than the sandbox allows"
    if kind == "stack":
        return "error", "code error: the interpreter's stack overflowed (unbounded recursion?)"
    if kind:
        return "error", f"code error: the interpreter stopped ({run.trap or kind})"[:300]
    if run.stdout_truncated:
        return "error", "code error: the code wrote more output than the sandbox keeps, and results were lost"
    return "error", f"code error: the program exited (status {run.exit_code}) before returning"


TAMPERED = "code error: the code wrote records into the harness's result channel ({}), so nothing from this run counts"


def _run_candidate(code: str, function: str, calls: list[dict], *, reference: Guest | None, timeout: float,
                   call_timeout: float, order_seed: int, mode: str | None = None) -> tuple[dict | None, dict[int, dict], dict[int, tuple[str, str]], GuestResult | None]:
    """Run the calls (restarting after a call that hangs); the reference guest rides along in the
    first host process. Returns (load record, results by index, failures by index, reference run);
    a tampered run is a failure at index -2 and has no results.

    The calls go in a shuffled order (fixed per answer), the rubric's and the hidden ones mixed,
    so code cannot know a call by its position: answering it means reading its arguments."""
    limits = Limits(timeout=timeout, max_output=1 << 20)
    todo = list(enumerate(calls))
    random.Random(order_seed).shuffle(todo)
    load: dict | None = None
    results: dict[int, dict] = {}
    failures: dict[int, tuple[str, str]] = {}
    reference_run: GuestResult | None = None
    for attempt in range(MAX_RELAUNCH + 1):
        tag = "mlgrade-" + secrets.token_hex(8)
        guests = [_guest(tag, code, function, todo, call_timeout)]
        if reference is not None and attempt == 0:
            guests.append(reference)
        runs = run_guests(guests, limits=limits, mode=mode)
        run = runs[0]
        if len(runs) > 1:
            reference_run = runs[1]
        order = [i for i, _ in todo]
        records = _Records(run, tag, order)
        if records.tampered:
            return load, {}, {-2: ("error", TAMPERED.format(records.tampered))}, reference_run
        load = load or records.load
        results.update(records.results)
        if load is None or load.get("load") != "ok":
            break
        missing = [i for i in order if i not in results]
        if not missing:
            break
        status, message = _crash_reason(run, timeout)
        begun = records.running(order)
        if run.interrupted == "step-timeout" and begun is not None and attempt < MAX_RELAUNCH:
            failures[begun] = (status, message)
            todo = [(i, c) for i, c in todo if i not in results and i != begun]
            if todo:
                continue
            break
        for i in missing:
            failures.setdefault(i, (status, message))
        break
    for i, _ in todo:
        if i not in results and i not in failures:
            failures[i] = ("timeout", "not run: earlier calls of this function did not return in time")
    if load is None:
        failures[-1] = _crash_reason(run, timeout)
    return load, results, failures, reference_run


def _hidden_cases(rubric: Rubric, seed: int) -> list[HiddenCase]:
    if not rubric.hidden_tests or not rubric.reference_solution or not rubric.function:
        return []
    spec = rubric.hidden_tests
    return generate(spec.generator, spec.count, seed)


def run_rubric_tests(rubric: Rubric, answer: str, *, timeout: float = DEFAULT_TIMEOUT,
                     call_timeout: float = CALL_TIMEOUT, seed: int | None = None,
                     sandbox: str | None = None) -> list[CodeTestResult]:
    """Run the rubric's tests and its hidden cases against the function in the answer, in the
    sandbox. One result per case; a single `(answer)` result when there is no code, a syntax
    error, no function to call, or no sandbox (then nothing is run)."""
    if not rubric.tests or not rubric.function:
        return []
    code = extract_code(answer)
    if code is None:
        return _whole("error", "no Python code found in the answer, so nothing could be run")
    problem = _syntax_error(code)
    if problem:
        return _whole("error", f"code error: {problem}")
    function = rubric.function
    seed = answer_seed(rubric, code) if seed is None else seed
    hidden = _hidden_cases(rubric, seed)
    calls = [_call_spec(t.call, function) for t in rubric.tests] + [{"args": list(h.args)} for h in hidden]
    reference = None
    ref_tag = "mlgrade-ref-" + secrets.token_hex(8)
    if hidden:
        reference = _guest(ref_tag, rubric.reference_solution or "", function,
                           [(i, {"args": list(h.args)}) for i, h in enumerate(hidden)], call_timeout)
    try:
        load, results, failures, ref_run = _run_candidate(code, function, calls, reference=reference, timeout=timeout,
                                                          call_timeout=min(call_timeout, timeout),
                                                          order_seed=seed ^ 0x0DE5, mode=sandbox)
    except SandboxUnavailable as exc:
        return _whole("not-run", f"{NO_SANDBOX} ({exc})")
    except SandboxError as exc:  # it failed while the candidate's code was running: the code's result
        return _whole("error", f"code error: {exc}")
    if -2 in failures:
        return _whole(*failures[-2])
    if load is None or load.get("load") != "ok":
        if load is None:
            status, message = failures.get(-1, ("error", "code error: the sandbox ended before running the code"))
            if status == "timeout":
                return _whole("timeout", f"loading the code did not finish within {timeout:g} s")
            return _whole("error", message)
        if load.get("load") == "no-function":
            defined = ", ".join(str(d) for d in load.get("defined") or []) or "none"
            return _whole("error", f"no function named {function} (functions defined: {defined})")
        return _whole("error", f"code error: the code failed while loading: {load.get('type')}: {load.get('message')}")
    out = [_result(t.call, _plain_expected(t.expected), results.get(i), failures.get(i), edge=t.edge)
           for i, t in enumerate(rubric.tests)]
    expected = _reference_values(ref_run, ref_tag, len(hidden))
    base = len(rubric.tests)
    for j, h in enumerate(hidden):
        if j not in expected:
            continue  # the reference gave no value (it should): drop the case rather than guess
        out.append(_result(h.call(function), expected[j], results.get(base + j), failures.get(base + j),
                           edge=h.edge, hidden=True))
    return out


def _reference_values(run: GuestResult | None, tag: str, count: int) -> dict[int, Any]:
    if run is None:
        return {}
    values = {}
    for i, r in _Records(run, tag, list(range(count))).results.items():
        try:
            values[i] = json.loads(r["value"])
        except (KeyError, TypeError, ValueError, RecursionError):
            pass
    return values


def _result(call: str, want: Any, report: dict | None, failure: tuple[str, str] | None, *, edge: bool,
            hidden: bool = False) -> CodeTestResult:
    base = {"call": call, "expected": _show(want), "edge": edge, "hidden": hidden}
    if report is None:
        status, message = failure or ("error", "code error: no result (the process ended early)")
        return CodeTestResult(**base, status=status, error=message)
    if "error" in report and isinstance(report["error"], dict):
        err = report["error"]
        return CodeTestResult(**base, status="error", error=f"{err.get('type')}: {err.get('message')}".rstrip(": ")[:MAX_SHOWN])
    if "repr" in report:
        return CodeTestResult(**base, status="failed", got=str(report["repr"])[:MAX_SHOWN])
    try:
        got = json.loads(report["value"])
    except (KeyError, TypeError, ValueError, RecursionError):
        return CodeTestResult(**base, status="error", error="code error: unreadable result")
    return CodeTestResult(**base, status="passed" if _same(got, want) else "failed", got=_show(got))

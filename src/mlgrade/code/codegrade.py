"""Grade coding answers by running them: extract the code, run the rubric's tests and hidden
randomized cases in the sandbox, and turn the results into judgments of the rubric's
correctness and edge-case key points.

What the candidate's code can and cannot touch: it runs in a wasm instance of its own (see
sandbox.py). The parent sends only the call arguments; the instance sends back, per call, the
JSON (or a truncated repr) of the returned value or the exception's type and message. The
expected values never enter it: the visible ones stay in the parent, and the hidden cases are
generated in the parent from a seed drawn fresh for every run, with their expected values
computed by the rubric's reference solution in a sandbox host of its own that never sees the
candidate's code. Comparison happens in the parent. When the reference gives no values, the code
is "not checked" (the text is judged), never passed or failed on mlgrade's failure.

The result channel: calls are fed in lockstep (call k's arguments exist in the instance only
after it has written its record for call k-1), shuffled and under random ids, and the parent
takes exactly one record of the harness's exact shape per call, in order. A record the harness
did not write beside its own (a second load record, a result for another call or of another
shape, an unreadable line) marks the run as tampered and nothing from it counts. No
channel inside one interpreter can be secret from the code sharing it, so code that silences the
harness and writes the records itself is possible; but then each value it writes was made after
it saw that call's arguments, which is what answering the call means, and to pass the hidden
cases it has to answer them right.

grading.py calls `run_rubric_tests` before the grader (its results are the grader's `facts`)
and `verdicts.apply_code_results` in `finalize`, so every grader's correctness verdict rests on the run.
"""

from __future__ import annotations

import ast
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
from .needs import missing_library, not_verified
from .sandbox import DEFAULT_TIMEOUT, Guest, GuestResult, Limits, SandboxError, SandboxUnavailable, run_guests

CALL_TIMEOUT = 1.0  # per test call; the rubric tests are tiny, so a correct answer needs milliseconds
MAX_SHOWN = 300  # characters of a value shown in a result
MAX_RELAUNCH = 2  # fresh instances started after a call times out, for the calls after it
WHOLE_ANSWER = "(answer)"  # the `call` of a result that concerns the whole answer, not one test
NO_SANDBOX = "code not run: no sandbox available"
NO_REFERENCE = "code not checked: the rubric's reference solution could not compute the hidden cases"


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
    if isinstance(a, int) and isinstance(b, int):
        return a == b  # exact: 10**12 + 999 is not 10**12
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        try:
            return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        except OverflowError:  # an int too large for a float (10**400) is no float's neighbour
            return False
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


def run_seed() -> int:
    """A fresh seed for one run's hidden cases and call order. Random, not derived from the answer:
    a seed the candidate could compute (from the code, say) would let them rewrite a comment until
    the generated cases were ones their wrong function gets right. The cases a run used are in its
    results (each hidden case's call), so a grade still shows what was checked."""
    return secrets.randbits(63)


def _guest(tag: str, code: str, function: str, calls: list[tuple[str, dict]], call_timeout: float) -> Guest:
    """A harness run: the job (code, function) on stdin, the calls fed in lockstep, each under a
    random id (so its position or number says nothing, e.g. which calls are hidden cases)."""
    job = {"tag": tag, "code": code, "function": function}
    feed = tuple(marshal.dumps({"i": cid, **c}, 4) for cid, c in calls)
    return Guest(program=_HARNESS, stdin=marshal.dumps(job, 4), step_marker=tag + " ", step_timeout=call_timeout,
                 feed=feed)


def _clip(text: Any, limit: int = MAX_SHOWN) -> str:
    """Text from the code, made safe for a one-line comment: control characters (newlines too:
    they could fake result lines in a comment) escaped, and cut to `limit` characters."""
    text = str(text)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[:limit] + "…"


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _load_problem(rec: dict) -> str:
    kind = rec.get("load")
    if kind == "ok" and set(rec) <= {"load", "alias"} and (rec.get("alias") is None or _is_str(rec["alias"])):
        return ""
    if kind == "error" and set(rec) == {"load", "type", "message"} and _is_str(rec["type"]) and _is_str(rec["message"]):
        return ""
    if kind == "no-function" and set(rec) == {"load", "defined"} and isinstance(rec["defined"], list) \
            and all(_is_str(d) for d in rec["defined"]):
        return ""
    return "a load record the harness did not write"


def _result_problem(rec: dict) -> str:
    keys = set(rec) - {"i"}
    if keys == {"value"} and _is_str(rec["value"]) or keys == {"repr"} and _is_str(rec["repr"]):
        return ""
    err = rec.get("error")
    if keys == {"error"} and isinstance(err, dict) and set(err) == {"type", "message"} \
            and _is_str(err["type"]) and _is_str(err["message"]):
        return ""
    return "a result the harness did not write"


class _Records:
    """What one run's record lines say, read strictly: the harness writes a load record, then one
    result per call in the order the calls were fed, each of exactly the harness's shape. Anything
    else on the tagged channel (a second load record, a result for another call or of another
    shape, an unreadable record) was written by the code, so the run is `tampered` and none of its
    results count. Lines are split on newlines only, as the sandbox's RecordFeed splits them, and
    the prefix is the same marker, so both count the same records."""

    def __init__(self, run: GuestResult, marker: str, order: list[str]) -> None:
        self.load: dict | None = None
        self.results: dict[str, dict] = {}
        self.tampered = ""
        lines = run.stdout.split("\n")
        for n, line in enumerate(lines):
            if not line.startswith(marker):
                continue
            problem = self._take(line[len(marker):], order)
            if problem:
                if run.stdout_truncated and n == len(lines) - 1:
                    break  # the output cap cut this record short: a crash, not tampering
                self.tampered = problem
                self.results = {}
                return

    def _take(self, text: str, order: list[str]) -> str:
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
            return _load_problem(rec)
        n = len(self.results)
        if "load" in rec or n >= len(order) or rec.get("i") != order[n]:
            return "a record the harness did not write"
        self.results[order[n]] = rec
        return _result_problem(rec)

    def running(self, order: list[str]) -> str | None:
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


def _run_candidate(code: str, function: str, calls: list[dict], *, timeout: float, call_timeout: float,
                   order_seed: int, mode: str | None = None, background: bool = False) -> tuple[dict | None, dict[int, dict], dict[int, tuple[str, str]]]:
    """Run the calls (restarting after a call that hangs). Returns (load record, results by index,
    failures by index); a tampered run is a failure at index -2 and has no results.

    The calls go in a shuffled order (random per run), the rubric's and the hidden ones mixed,
    each under a random id, so code cannot know a call by its position: answering it means
    reading its arguments."""
    limits = Limits(timeout=timeout, max_output=1 << 20)
    rng = random.Random(order_seed)
    todo = [(index, f"{rng.getrandbits(48):012x}", call) for index, call in enumerate(calls)]
    rng.shuffle(todo)
    index_of = {cid: index for index, cid, _ in todo}
    load: dict | None = None
    results: dict[int, dict] = {}
    failures: dict[int, tuple[str, str]] = {}
    for attempt in range(MAX_RELAUNCH + 1):
        tag = "mlgrade-" + secrets.token_hex(8)
        run = run_guests([_guest(tag, code, function, [(cid, c) for _, cid, c in todo], call_timeout)],
                         limits=limits, mode=mode, background=background)[0]
        order = [cid for _, cid, _ in todo]
        records = _Records(run, tag + " ", order)
        if records.tampered:
            return load, {}, {-2: ("error", TAMPERED.format(records.tampered))}
        if run.interrupted == "disk":  # a broken sandbox limit voids the run, whatever it answered
            return load, {}, {-2: _crash_reason(run, timeout)}
        load = load or records.load
        results.update({index_of[cid]: rec for cid, rec in records.results.items()})
        if load is None or load.get("load") != "ok":
            break
        missing = [index_of[cid] for cid in order if index_of[cid] not in results]
        if not missing:
            break
        status, message = _crash_reason(run, timeout)
        begun = records.running(order)
        if run.interrupted == "step-timeout" and begun is not None and attempt < MAX_RELAUNCH:
            failures[index_of[begun]] = (status, message)
            todo = [t for t in todo if t[0] not in results and t[1] != begun]
            if todo:
                continue
            break
        for i in missing:
            failures.setdefault(i, (status, message))
        break
    for index, _, _ in todo:
        if index not in results and index not in failures:
            failures[index] = ("timeout", "not run: earlier calls of this function did not return in time")
    if load is None:
        failures[-1] = _crash_reason(run, timeout)
    return load, results, failures


def _reference_run(rubric: Rubric, hidden: list[HiddenCase], call_timeout: float, mode: str | None,
                   background: bool = False) -> dict[int, Any] | str:
    """The hidden cases' expected values, from the rubric's reference solution run in a sandbox
    host of its own (so nothing the candidate's code does to its host, such as using up its open
    files, can touch it); or why there are none."""
    if not hidden:
        return {}
    tag = "mlgrade-ref-" + secrets.token_hex(8)
    ids = [f"{k:x}" for k in range(len(hidden))]
    guest = _guest(tag, rubric.reference_solution or "", rubric.function or "",
                   [(cid, {"args": list(h.args)}) for cid, h in zip(ids, hidden)], call_timeout)
    try:
        run = run_guests([guest], limits=Limits(timeout=DEFAULT_TIMEOUT, max_output=1 << 20), mode=mode,
                         background=background)[0]
    except (SandboxUnavailable, SandboxError) as exc:
        return str(exc)
    records = _Records(run, tag + " ", ids)
    values: dict[int, Any] = {}
    for k, cid in enumerate(ids):
        try:
            values[k] = json.loads(records.results[cid]["value"])
        except (KeyError, TypeError, ValueError, RecursionError):
            why = run.trap or run.interrupted or (run.stderr.strip().splitlines() or ["no value"])[-1]
            return f"it gave no value for {hidden[k].call(rubric.function or 'f')}: {_clip(why, 200)}"
    return values


def _hidden_cases(rubric: Rubric, seed: int) -> list[HiddenCase]:
    if not rubric.hidden_tests or not rubric.reference_solution or not rubric.function:
        return []
    spec = rubric.hidden_tests
    return generate(spec.generator, spec.count, seed)


def run_rubric_tests(rubric: Rubric, answer: str, *, timeout: float = DEFAULT_TIMEOUT,
                     call_timeout: float = CALL_TIMEOUT, seed: int | None = None,
                     sandbox: str | None = None, background: bool = False) -> list[CodeTestResult]:
    """Run the rubric's tests and its hidden cases against the function in the answer, in the
    sandbox. One result per case; a single `(answer)` result when there is no code, a syntax
    error, no function to call, or no sandbox (then nothing is run). `seed` fixes the hidden
    cases and the call order (for tests); by default both are random per run. `background`:
    in hosts forked warm, for a batch (sandbox.run_guests; the results are the same)."""
    if not rubric.tests or not rubric.function:
        return []
    code = extract_code(answer)
    if code is None:
        return _whole("error", "no Python code found in the answer, so nothing could be run")
    problem = _syntax_error(code)
    if problem:
        return _whole("error", f"code error: {problem}")
    function = rubric.function
    seed = run_seed() if seed is None else seed
    hidden = _hidden_cases(rubric, seed)
    calls = [_call_spec(t.call, function) for t in rubric.tests] + [{"args": list(h.args)} for h in hidden]
    call_timeout = min(call_timeout, timeout)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:  # the reference's host runs beside the candidate's
        reference = pool.submit(_reference_run, rubric, hidden, call_timeout, sandbox, background)
        try:
            load, results, failures = _run_candidate(code, function, calls, timeout=timeout, call_timeout=call_timeout,
                                                     order_seed=seed ^ 0x0DE5, mode=sandbox, background=background)
        except SandboxUnavailable as exc:
            return _whole("not-run", f"{NO_SANDBOX} ({exc})")
        except SandboxError as exc:  # it failed while the candidate's code was running: the code's result
            return _whole("error", f"code error: {exc}")
        expected = reference.result()
    if -2 in failures:
        return _whole(*failures[-2])
    if load is None or load.get("load") != "ok":
        if load is None:
            status, message = failures.get(-1, ("error", "code error: the sandbox ended before running the code"))
            if status == "timeout":
                return _whole("timeout", f"loading the code did not finish within {timeout:g} s")
            return _whole("error", message)
        if load.get("load") == "no-function":
            defined = _clip(", ".join(load.get("defined") or []) or "none")
            return _whole("error", f"no function named {function} (functions defined: {defined})")
        library = missing_library(code, str(load.get("type")), str(load.get("message")))
        if library:  # the sandbox's lack, not the code's fault: not verified, the text is judged
            return _whole("not-run", not_verified(library))
        return _whole("error", "code error: the code failed while loading: "
                               + _clip(f"{load.get('type')}: {load.get('message')}"))
    if isinstance(expected, str):  # mlgrade's side failed: the run proves nothing either way
        return _whole("not-run", f"{NO_REFERENCE} ({expected})")
    out = [_result(t.call, _plain_expected(t.expected), results.get(i), failures.get(i), edge=t.edge)
           for i, t in enumerate(rubric.tests)]
    base = len(rubric.tests)
    for j, h in enumerate(hidden):
        out.append(_result(h.call(function), expected[j], results.get(base + j), failures.get(base + j),
                           edge=h.edge, hidden=True))
    return out


def _result(call: str, want: Any, report: dict | None, failure: tuple[str, str] | None, *, edge: bool,
            hidden: bool = False) -> CodeTestResult:
    base = {"call": call, "expected": _show(want), "edge": edge, "hidden": hidden}
    if report is None:
        status, message = failure or ("error", "code error: no result (the process ended early)")
        return CodeTestResult(**base, status=status, error=message)
    if "error" in report and isinstance(report["error"], dict):
        err = report["error"]
        return CodeTestResult(**base, status="error", error=_clip(f"{err.get('type')}: {err.get('message')}".rstrip(": ")))
    if "repr" in report:
        return CodeTestResult(**base, status="failed", got=_clip(report["repr"]))
    try:
        got = json.loads(report["value"])
    except (KeyError, TypeError, ValueError, RecursionError):
        return CodeTestResult(**base, status="error", error="code error: unreadable result")
    return CodeTestResult(**base, status="passed" if _same(got, want) else "failed", got=_show(got))

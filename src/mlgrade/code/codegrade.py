"""Grade coding answers by running them: extract the code, run the rubric's tests in the sandbox,
and turn the results into judgments of the rubric's correctness key points.

grading.py calls `run_rubric_tests` before the grader (its results are the grader's `facts`)
and `apply_code_results` in `finalize`, so every grader's correctness verdict rests on the run.
"""

from __future__ import annotations

import ast
import json
import math
import re
import textwrap
from typing import Any

from ..models import CodeTestResult, Judgment, Rubric
from .sandbox import DEFAULT_TIMEOUT, Limits, run_python

CALL_TIMEOUT = 1.0  # per test call; the rubric tests are tiny, so a correct answer needs milliseconds
MAX_SHOWN = 300  # characters of a value shown in a result
WHOLE_ANSWER = "(answer)"  # the `call` of a result that concerns the whole answer, not one test

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.S)
_INLINE_DEF = re.compile(r"`(def [^`\n]+)`")
_DEF_LINE = re.compile(r"^([ \t]*)(async[ \t]+)?def[ \t]+\w+[ \t]*\(", re.M)
_CODE_LANGS = {"", "python", "py", "python3", "py3", "ipython", "pycon"}

# Runs inside the sandbox: load the candidate's code, find the function, run each call with its own
# alarm, report plain JSON values. Comparison happens in the parent, so an object with a rigged
# __eq__ cannot pass a test.
_HARNESS = r'''
import signal, types, json, itertools
class _CallTimeout(BaseException):
    pass
def _alarm(signum, frame):
    raise _CallTimeout()
signal.signal(signal.SIGALRM, _alarm)
_cfg = SANDBOX_INPUT
_report = sandbox_report
_set_timer = signal.setitimer

def _plain(v, depth=0):
    # tuples become lists; iterators (zip, map, generators) are materialised (bounded)
    if depth > 50:
        raise ValueError("value nested too deeply")
    if isinstance(v, (tuple, list)):
        return [_plain(x, depth + 1) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x, depth + 1) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if hasattr(v, "__next__") and iter(v) is v:
        return [_plain(x, depth + 1) for x in itertools.islice(v, 100000)]
    raise TypeError("not a plain value")

def _describe(e):
    return {"type": type(e).__name__, "message": str(e)[:500]}

_ns = {"__name__": "__candidate__", "__builtins__": __builtins__}
try:
    exec(compile(_cfg["code"], "<answer>", "exec"), _ns)
except BaseException as e:
    _report({"load": "error", **_describe(e)})
    raise SystemExit(0)

_name = _cfg["function"]
_target = _ns.get(_name) if callable(_ns.get(_name)) else None
_alias = None
if _target is None:
    _funcs = [k for k, v in _ns.items() if isinstance(v, types.FunctionType) and not k.startswith("_")
              and v.__code__.co_filename == "<answer>"]
    _methods = [(k, v) for k, v in _ns.items() if isinstance(v, type) and callable(getattr(v, _name, None))]
    if len(_funcs) == 1:
        _alias = _funcs[0]
        _target = _ns[_alias]
    elif len(_methods) == 1:
        try:
            _target = getattr(_methods[0][1](), _name)
            _alias = _methods[0][0] + "()." + _name
        except BaseException as e:
            _report({"load": "error", **_describe(e)})
            raise SystemExit(0)
    else:
        _report({"load": "no-function", "defined": _funcs})
        raise SystemExit(0)
    _ns[_name] = _target
_report({"load": "ok", "alias": _alias})

for _i, _call in enumerate(_cfg["calls"]):
    try:
        _set_timer(signal.ITIMER_REAL, _cfg["call_timeout"])
        try:
            _value = eval(_call, _ns)
            try:
                _out = {"i": _i, "value": json.dumps(_plain(_value))}
            except (TypeError, ValueError, RecursionError):
                _out = {"i": _i, "repr": repr(_value)[:2000]}
        finally:
            _set_timer(signal.ITIMER_REAL, 0)
    except _CallTimeout:
        _out = {"i": _i, "timeout": True}
    except BaseException as e:
        _out = {"i": _i, "error": _describe(e)}
    if len(_out.get("value", "")) > 200000:
        _out = {"i": _i, "repr": _out["value"][:2000] + "... (value too large)"}
    _report(_out)
'''


# --------------------------------------------------------------------------- extraction


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _defines_something(code: str) -> bool:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)) for n in ast.walk(tree))


def _def_region(answer: str) -> str | None:
    """Unfenced code inside prose: from the first `def` line, the lines that are indented under it
    or look like code at its level. Returned even when it does not parse, so the error is shown."""
    m = _DEF_LINE.search(answer)
    if not m:
        return None
    lines = answer[m.start():].splitlines()
    base = len(m.group(1).expandtabs())
    kept = [lines[0]]
    codeish = re.compile(r"(def|async def|class|return|import|from|if|for|while|with|try|except|else|elif|@|print\(|\w+\s*=)")
    for line in lines[1:]:
        indent = len(line) - len(line.lstrip())
        if not line.strip() or indent > base or codeish.match(line.strip()) and indent == base:
            kept.append(line)
        else:
            break
    return textwrap.dedent("\n".join(kept)).strip() + "\n"


def extract_code(answer: str) -> str | None:
    """The Python code of an answer: its fenced blocks (joined), else the whole answer when it parses
    and defines something, else inline `def ...` code or a def-led region of prose. None if no code."""
    blocks = [body for lang, body in _FENCE.findall(answer) if lang.lower() in _CODE_LANGS]
    if blocks:
        good = [b for b in blocks if _parses(b)]
        if good:
            return "\n\n".join(textwrap.dedent(b) for b in good)
        return textwrap.dedent(blocks[0])  # none parses: run the first so its syntax error is reported
    text = answer.strip("\n")
    if _defines_something(text):
        return text + "\n"
    dedented = textwrap.dedent(text)
    if dedented != text and _defines_something(dedented):
        return dedented + "\n"
    inline = [c for c in _INLINE_DEF.findall(answer) if _parses(c)]
    if inline:
        return "\n\n".join(inline) + "\n"
    return _def_region(answer)


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


def _hidden_dirs() -> tuple[str, ...]:
    try:
        from ..config import load_settings

        return (str(load_settings().home),)
    except Exception:  # a broken config must not stop the run; home and cwd are hidden anyway
        return ()


def _syntax_error(code: str) -> str | None:
    try:
        ast.parse(code)
    except SyntaxError as e:
        where = f" (line {e.lineno})" if e.lineno else ""
        return f"SyntaxError: {e.msg}{where}" + (f": {e.text.strip()}" if e.text and e.text.strip() else "")
    except (ValueError, RecursionError, MemoryError) as e:
        return f"the code cannot be parsed: {type(e).__name__}: {e}"
    return None


def run_rubric_tests(rubric: Rubric, answer: str, *, timeout: float = DEFAULT_TIMEOUT,
                     call_timeout: float = CALL_TIMEOUT) -> list[CodeTestResult]:
    """Run the rubric's tests against the function in the answer, in the sandbox. One result per
    test; a single `(answer)` result when there is no code, a syntax error or no function to call."""
    if not rubric.tests or not rubric.function:
        return []
    code = extract_code(answer)
    if code is None:
        return _whole("error", "no Python code found in the answer, so nothing could be run")
    problem = _syntax_error(code)
    if problem:
        return _whole("error", problem)
    calls = [t.call for t in rubric.tests]
    run = run_python(_HARNESS, data={"code": code, "function": rubric.function, "calls": calls,
                                     "call_timeout": min(call_timeout, timeout)},
                     limits=Limits(timeout=timeout, hide=_hidden_dirs()))
    load = next((r for r in run.reports if "load" in r), None)
    if load is None or load["load"] != "ok":
        if load is None:
            if run.timed_out:
                return _whole("timeout", f"loading the code did not finish within {timeout:g} s")
            return _whole("error", "the sandbox ended before running the code: " + (run.stderr.strip()[-300:] or "no output"))
        if load["load"] == "no-function":
            defined = ", ".join(load.get("defined") or []) or "none"
            return _whole("error", f"no function named {rubric.function} (functions defined: {defined})")
        return _whole("error", f"the code failed while loading: {load['type']}: {load['message']}")
    by_index = {r["i"]: r for r in run.reports if "i" in r}
    return [_result(t.call, t.expected, by_index.get(i), run.timed_out, timeout) for i, t in enumerate(rubric.tests)]


def _result(call: str, expected: Any, report: dict | None, timed_out: bool, timeout: float) -> CodeTestResult:
    want = _plain_expected(expected)
    base = {"call": call, "expected": _show(want)}
    if report is None:
        if timed_out:
            return CodeTestResult(**base, status="timeout", error=f"not finished: the run hit its {timeout:g} s limit")
        return CodeTestResult(**base, status="error", error="no result: the process ended early (crash or limit)")
    if report.get("timeout"):
        return CodeTestResult(**base, status="timeout", error="the call did not return in time (infinite loop?)")
    if "error" in report:
        err = report["error"]
        return CodeTestResult(**base, status="error", error=f"{err['type']}: {err['message']}".rstrip(": "))
    if "repr" in report:
        return CodeTestResult(**base, status="failed", got=report["repr"][:MAX_SHOWN])
    got = json.loads(report["value"])
    return CodeTestResult(**base, status="passed" if _same(got, want) else "failed", got=_show(got))


# --------------------------------------------------------------------------- judgments


def describe_results(results: list[CodeTestResult]) -> str:
    """One line per test, for prompts and comments."""
    lines = []
    for r in results:
        if r.status == "passed":
            lines.append(f"{r.call} -> passed")
        elif r.status == "failed":
            lines.append(f"{r.call} -> FAILED: expected {r.expected}, got {r.got}")
        else:
            lines.append(f"{r.call} -> {r.status.upper()}: {r.error}")
    return "\n".join(lines)


def apply_code_results(rubric: Rubric, judgments: list[Judgment], results: list[CodeTestResult]) -> list[Judgment]:
    """Set the correctness key points from the test run: all passed -> covered, some -> partial,
    none -> missing, with the first failing case in the comment. Other points are untouched."""
    if not results or not rubric.correctness_points:
        return judgments
    total = len(rubric.tests) or len(results)
    passed = sum(r.status == "passed" for r in results)
    per_test = not (len(results) == 1 and results[0].call == WHOLE_ANSWER)
    if per_test and passed == total:
        status, summary = "covered", f"all {total} tests passed"
    elif per_test and passed:
        status, summary = "partial", f"{passed} of {total} tests passed"
    else:
        status, summary = "missing", (f"0 of {total} tests passed" if per_test else "no test could run")
    failing = next((r for r in results if r.status != "passed"), None)
    if failing is not None:
        detail = describe_results([failing])
        summary += f"; first problem: {detail}" if per_test else f": {failing.error}"
    comment = f"Verified by running the code against the rubric's tests: {summary}."
    out = []
    for j in judgments:
        if j.key_point in rubric.correctness_points:
            j = j.model_copy(update={"status": status, "verified": True, "comment": comment,
                                     "claimed_status": j.claimed_status or j.status,
                                     "evidence": j.evidence if status != "missing" else ""})
        out.append(j)
    return out

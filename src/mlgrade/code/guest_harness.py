"""The test harness that runs INSIDE the wasm instance (as `python -I -S -c <this file's text>`),
never imported by mlgrade. Reads its job from stdin, loads the candidate's code, finds the
function, calls it once per case and writes one line per result to fd 1, each prefixed with the
run's tag. The tag only keeps the code's ordinary prints from being read as results (they go to a
sink anyway); it is not a secret: the code shares this interpreter. Nothing here decides whether
a test passed: the parent compares the values with expectations this instance never sees.
"""
import sys, os, marshal, itertools
from _json import encode_basestring_ascii as _quote
# `json` is not imported: it pulls in `re`, which costs more than starting the interpreter.
# The job comes as marshal data (from mlgrade, trusted); results go out as JSON built here.
_write, _repr, _str, _type, _isinstance = os.write, repr, str, type, isinstance  # survive casual monkeypatching
_job = marshal.loads(sys.stdin.buffer.read())
_tag = _job.pop("tag")
_FUNCTION = _type(lambda: 0)

def _enc(v, depth=0):
    """JSON text of a plain value: tuples and iterators become lists; anything else is TypeError."""
    if depth > 50:
        raise ValueError("value nested too deeply")
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if _type(v) is int or (_isinstance(v, int) and not _isinstance(v, bool)):
        return _str(int(v))
    if _isinstance(v, float):
        if v != v:
            return "NaN"
        if v in (float("inf"), float("-inf")):
            return "Infinity" if v > 0 else "-Infinity"
        return float.__repr__(v)
    if _isinstance(v, str):
        return _quote(str.__str__(v))
    if _isinstance(v, (tuple, list)):
        return "[" + ", ".join(_enc(x, depth + 1) for x in v) + "]"
    if _isinstance(v, dict):
        return "{" + ", ".join(_quote(_str(k)) + ": " + _enc(x, depth + 1) for k, x in v.items()) + "}"
    if hasattr(v, "__next__") and iter(v) is v:
        return "[" + ", ".join(_enc(x, depth + 1) for x in itertools.islice(v, 100000)) + "]"
    raise TypeError("not a plain value")

def _emit(obj):
    _write(1, (_tag + " " + _enc(obj) + "\n").encode("utf-8", "backslashreplace"))

class _Sink:
    def write(self, s):
        return len(s)
    def flush(self):
        pass
sys.stdout = sys.stderr = _Sink()

def _describe(e):
    try:
        msg = _str(e)[:200]
    except BaseException:
        msg = ""
    return {"type": _type(e).__name__[:80], "message": msg}

_ns = {"__name__": "__candidate__", "__builtins__": __builtins__}
try:
    exec(compile(_job["code"], "<answer>", "exec"), _ns)
except BaseException as e:
    _emit({"load": "error", **_describe(e)})
    raise SystemExit(0)

_name = _job["function"]
_target = _ns.get(_name) if callable(_ns.get(_name)) else None
_alias = None
if _target is None:
    _funcs = [k for k, v in _ns.items() if isinstance(v, _FUNCTION) and not k.startswith("_")
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
            _emit({"load": "error", **_describe(e)})
            raise SystemExit(0)
    else:
        _emit({"load": "no-function", "defined": _funcs[:20]})
        raise SystemExit(0)
    _ns[_name] = _target
_emit({"load": "ok", "alias": _alias})

for _i, _call in _job["calls"]:
    _emit({"begin": _i})
    try:
        if "expr" in _call:
            _value = eval(_call["expr"], _ns)
        else:
            _value = _target(*_call["args"])
        try:
            _out = {"i": _i, "value": _enc(_value)}
        except (TypeError, ValueError, RecursionError):
            _out = {"i": _i, "repr": _repr(_value)[:2000]}
    except BaseException as e:
        _out = {"i": _i, "error": _describe(e)}
    if len(_out.get("value", "")) > 16000:  # keeps every result within the sandbox's output cap
        _out = {"i": _i, "repr": _out["value"][:2000] + "... (value too large)"}
    _emit(_out)

"""The test harness that runs INSIDE the wasm instance (as `python -I -S -c <this file's text>`),
never imported by mlgrade. Reads its job from stdin, loads the candidate's code, finds the
function, calls it once per case and writes one line per result to fd 1, each prefixed with the
run's tag. The tag only keeps the code's ordinary prints from being read as results (they go to a
sink anyway); it is not a secret: the code shares this interpreter. Nothing here decides whether
a test passed: the parent compares the values with expectations this instance never sees.
"""
import sys, os, json, types, itertools
_write, _dumps, _repr, _str, _type = os.write, json.dumps, repr, str, type  # survive casual monkeypatching
_job = json.loads(sys.stdin.read())
_tag = _job.pop("tag")
def _emit(obj):
    _write(1, (_tag + " " + _dumps(obj) + "\n").encode("utf-8", "backslashreplace"))
class _Sink:
    def write(self, s):
        return len(s)
    def flush(self):
        pass
sys.stdout = sys.stderr = _Sink()
try:
    os.chdir("/tmp")
except OSError:
    pass

def _plain(v, depth=0):
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
            _out = {"i": _i, "value": _dumps(_plain(_value))}
        except (TypeError, ValueError, RecursionError):
            _out = {"i": _i, "repr": _repr(_value)[:2000]}
    except BaseException as e:
        _out = {"i": _i, "error": _describe(e)}
    if len(_out.get("value", "")) > 200000:
        _out = {"i": _i, "repr": _out["value"][:2000] + "... (value too large)"}
    _emit(_out)

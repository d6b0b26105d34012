"""Find the Python code in an answer: fenced blocks, a plain .py file, inline `def`, or a
def-led region of prose."""

from __future__ import annotations

import ast
import re
import textwrap

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.S)
_INLINE_DEF = re.compile(r"`(def [^`\n]+)`")
_DEF_LINE = re.compile(r"^([ \t]*)(async[ \t]+)?def[ \t]+\w+[ \t]*\(", re.M)
_CODE_LANGS = {"", "python", "py", "python3", "py3", "ipython", "pycon"}
# An import on a line of its own above the def ("import re", blank line, "def f…") belongs to the code.
_IMPORT_LINE = re.compile(r"^[ \t]*(?:import[ \t]+[\w.]+(?:[ \t]+as[ \t]+\w+)?(?:[ \t]*,[ \t]*[\w.]+(?:[ \t]+as[ \t]+\w+)?)*"
                          r"|from[ \t]+[\w.]+[ \t]+import[ \t]+[\w., \t()]+)[ \t]*$")

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
    """Unfenced code inside prose: the import lines above the first `def`, then from that line on the
    lines that are indented under it or look like code at its level. Returned even when it does not
    parse, so the error is shown."""
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
    imports = [line.strip() for line in answer[:m.start()].splitlines() if _IMPORT_LINE.match(line) and _parses(line.strip())]
    return "\n".join(imports + [textwrap.dedent("\n".join(kept)).strip()]) + "\n"


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



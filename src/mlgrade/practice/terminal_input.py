"""Reading from a person at a terminal: a multi-line answer (prompt_toolkit), a single key
from a menu, one line of text, and an answer written in $EDITOR.

Keys for the answer box: Enter = new line, Ctrl-D = submit, Ctrl-C = abandon. Typing just `e`
and submitting opens $EDITOR instead. prompt_toolkit is imported lazily so the CLI starts fast.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ANSWER_HINT = " Enter new line · Ctrl-D submit · Ctrl-C abandon · type e + Ctrl-D for $EDITOR "


class Abandoned(Exception):
    """The person pressed Ctrl-C (or quit the editor with an empty file): nothing to grade.
    `text` is what was typed so far, so a caller can offer to carry on with it."""

    def __init__(self, text: str = ""):
        super().__init__()
        self.text = text


BOX_PREFIX = "│ "  # the answer box's left edge, on every row (first, continued and wrapped)


def word_wrap_processor(prefix_width: int = len(BOX_PREFIX)):  # type: ignore[no-untyped-def]
    """A prompt_toolkit input processor that wraps at spaces: prompt_toolkit only wraps at the
    edge, splitting words ("…a much larger pool o" / "f unlabelled data"). Before a word that
    would cross the edge it shows spaces up to the edge (display only: the text is unchanged),
    so the word starts the next row. A word longer than a row still breaks at the edge."""
    from prompt_toolkit.layout.utils import explode_text_fragments
    from prompt_toolkit.layout.processors import Processor, Transformation
    from prompt_toolkit.utils import get_cwidth

    class WordWrap(Processor):
        def apply_transformation(self, ti):  # type: ignore[no-untyped-def]
            fragments = explode_text_fragments(ti.fragments)
            text = "".join(f[1] for f in fragments)
            pads = wrap_pads(text, ti.width - prefix_width, get_cwidth)
            if not pads:
                return Transformation(ti.fragments)
            out, inserted, at = [], [], 0  # inserted[k]: padding shown before source position k
            for i, frag in enumerate(fragments):
                if i in pads:
                    out.append((frag[0], " " * pads[i]))
                    at += pads[i]
                inserted.append(at)
                out.append(frag)
            inserted.append(at)
            starts = sorted(pads)

            def to_display(i: int) -> int:
                return i + inserted[min(max(i, 0), len(inserted) - 1)]

            def to_source(j: int) -> int:
                shift = 0  # padding shown before the current word start
                for p in starts:
                    if j < p + shift:
                        return j - shift
                    if j < p + shift + pads[p]:
                        return p  # inside the padding: the word it pushes down
                    shift += pads[p]
                return j - shift

            return Transformation(out, source_to_display=to_display, display_to_source=to_source)

    return WordWrap()


def wrap_pads(text: str, row: int, width=len) -> dict[int, int]:  # type: ignore[no-untyped-def]
    """{position of a word's first character: spaces to show before it} so that no word that fits
    in a row of `row` columns is split across two rows."""
    pads: dict[int, int] = {}
    if row <= 1:
        return pads
    col, i = 0, 0
    while i < len(text):
        if text[i] == " ":
            col = (col + 1) % row
            i += 1
            continue
        end = text.find(" ", i)
        end = len(text) if end < 0 else end
        word = sum(width(c) for c in text[i:end])
        if col and col + word > row and word <= row:
            pads[i] = row - col
            col = 0
        col = (col + word) % row
        i = end
    return pads


def read_answer(*, hint: str = ANSWER_HINT, default: str = "", clock: Callable[[], str] | None = None) -> str:
    """A multi-line answer typed in the terminal. Raises Abandoned on Ctrl-C.

    `clock` (e.g. the interview's elapsed time) is shown at the start of the bottom toolbar and
    redrawn once a second; the toolbar never takes the focus, so typing is never interrupted."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.key_binding import KeyBindings

    bindings = KeyBindings()

    @bindings.add("c-d")
    def _submit(event) -> None:  # type: ignore[no-untyped-def]
        # Ctrl-D normally means EOF only on an empty line; here it always submits, as the hint says
        event.current_buffer.validate_and_handle()

    @bindings.add("c-c")
    def _abandon(event) -> None:  # type: ignore[no-untyped-def]
        event.app.exit(exception=Abandoned(event.current_buffer.text))

    toolbar: Any = hint if clock is None else (lambda: f" {clock()} ·{hint}")
    session: PromptSession[str] = PromptSession(
        multiline=True, key_bindings=bindings, bottom_toolbar=toolbar,
        prompt_continuation=lambda width, *_: BOX_PREFIX.rjust(width),
        enable_open_in_editor=True, input_processors=[word_wrap_processor()],
        refresh_interval=1.0 if clock is not None else 0,
    )
    try:
        text = session.prompt(BOX_PREFIX, default=default)
    except (KeyboardInterrupt, EOFError):
        raise Abandoned() from None
    if text.strip().lower() == "e":
        return edit_in_editor()
    return text


def read_key(prompt: str, keys: str, *, default: str | None = None) -> str:
    """Wait for one of `keys` (no Enter needed); Enter gives `default`; Ctrl-C / Ctrl-D give 'q'."""
    try:
        return _read_key(prompt, keys, default=default)
    except KeyboardInterrupt:
        # a Ctrl-C that lands before the prompt owns the terminal (a quick second Ctrl-C after an
        # abandoned answer) means what it means at the prompt: quit, not a crash with exit 130
        return "q"


def _read_key(prompt: str, keys: str, *, default: str | None = None) -> str:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.keys import Keys

    bindings = KeyBindings()

    def choose(key: str):  # type: ignore[no-untyped-def]
        def handler(event) -> None:  # type: ignore[no-untyped-def]
            event.app.exit(result=key)

        return handler

    for key in keys:
        bindings.add(key)(choose(key))
        if key.upper() != key:
            bindings.add(key.upper())(choose(key))
    if default:
        bindings.add("enter")(choose(default))
    bindings.add("c-c")(choose("q"))
    bindings.add("c-d")(choose("q"))

    @bindings.add(Keys.Any)
    def _ignore(event) -> None:  # type: ignore[no-untyped-def]
        pass  # any other key: stay on the menu instead of typing into it

    session: PromptSession[str] = PromptSession(key_bindings=bindings)
    return session.prompt(prompt)


def read_line(prompt: str, *, default: str = "", hint: str | None = None) -> str:
    """One line of text (Enter submits). Raises Abandoned on Ctrl-C or Ctrl-D."""
    from prompt_toolkit import PromptSession

    session: PromptSession[str] = PromptSession(bottom_toolbar=hint)
    try:
        return session.prompt(prompt, default=default)
    except (KeyboardInterrupt, EOFError):
        raise Abandoned() from None


def editor_command() -> list[str]:
    for var in ("VISUAL", "EDITOR"):
        value = os.environ.get(var, "").strip()
        if value:
            return shlex.split(value)
    for fallback in ("nano", "vim", "vi"):
        from shutil import which

        if which(fallback):
            return [fallback]
    from ..errors import ConfigError

    raise ConfigError("no editor found: set $EDITOR (e.g. export EDITOR=nano)")


def edit_in_editor(initial: str = "") -> str:
    """Open $VISUAL / $EDITOR on a temporary .md file and return what was saved. An empty
    file means the person changed their mind: Abandoned."""
    with tempfile.TemporaryDirectory(prefix="mlgrade-") as tmp:
        path = Path(tmp) / "answer.md"
        path.write_text(initial, encoding="utf-8")
        cmd = editor_command()
        try:
            status = subprocess.call([*cmd, str(path)])
        except FileNotFoundError:
            from ..errors import ConfigError

            raise ConfigError(f"editor {cmd[0]!r} not found: check $EDITOR") from None
        text = path.read_text(encoding="utf-8")
    if status != 0 or not text.strip():
        raise Abandoned()
    return text

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
        prompt_continuation=lambda width, *_: "│ ".rjust(width), enable_open_in_editor=True,
        refresh_interval=1.0 if clock is not None else 0,
    )
    try:
        text = session.prompt("│ ", default=default)
    except (KeyboardInterrupt, EOFError):
        raise Abandoned() from None
    if text.strip().lower() == "e":
        return edit_in_editor()
    return text


def read_key(prompt: str, keys: str, *, default: str | None = None) -> str:
    """Wait for one of `keys` (no Enter needed); Enter gives `default`; Ctrl-C / Ctrl-D give 'q'."""
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

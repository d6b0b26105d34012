"""Helpers shared by the command modules: options, settings, output. No grading logic here.

Every option that means the same thing on several commands is defined here, once, so it has the
same long name, short letter and help everywhere (tests/test_cli_options.py walks every command
and fails when a long or short name means two things). The letters in use:

  -g --grader   -m --model   -f --file   -n --limit   -o --out   -q --question   -s --section
  -c --concurrency   -e --editor   -a --answer (questions show)   -r --reference (rubrics derive)
  -h --help

`--base-url`, `--refresh`, `--rubrics` and `--json` have no short letter. Old spellings that were
documented keep working as hidden options (`--no-cache-capabilities`) or second long names
(`practice --count`, `rubrics derive --answer-file`).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from ..config import Settings
    from ..rubrics import RubricBank


def option(*decls: str, help: str, metavar: str | None = None, **kw: Any) -> Any:
    """A typer.Option with mlgrade's defaults: no `[default: None]` noise, a plain metavar."""
    kw.setdefault("show_default", False)
    return typer.Option(*decls, help=help, metavar=metavar, **kw)


# ---- the endpoint: every command that may grade with an LLM takes these four
GraderOpt = Annotated[Optional[str], option("--grader", "-g", metavar="NAME",
                                            help="auto, llm or offline. Env: MLGRADE_GRADER.")]
ModelOpt = Annotated[Optional[str], option("--model", "-m", metavar="NAME",
                                           help="Model for the llm grader. Env: MLGRADE_MODEL.")]
BaseUrlOpt = Annotated[Optional[str], option("--base-url", metavar="URL",
                                             help="OpenAI-compatible endpoint. Env: OPENAI_BASE_URL.")]
RefreshOpt = Annotated[bool, option("--refresh", metavar="",
                                    help="Re-detect what the endpoint accepts (response format, seed, temperature) "
                                         "instead of using the cached record; the fresh result is stored.")]
JudgeOpt = Annotated[Optional[str], option(
    "--judge", metavar="VARIANT",
    help="Order in which the LLM fills in each key point: verdict-first (status, then evidence) or evidence-first "
         "(the quote and comment, then the status). Env: MLGRADE_JUDGE. Compare them with "
         "`mlgrade eval --builtin --compare verdict-first,evidence-first`.")]
# the old name of --refresh on `grade`: kept working, no longer shown
LegacyRefreshOpt = Annotated[bool, option("--no-cache-capabilities", metavar="", hidden=True,
                                          help="Old name of --refresh.")]

# ---- data in and out
RubricsOpt = Annotated[Optional[Path], option(
    "--rubrics", metavar="DIR",
    help="Folder of extra rubrics (extends the built-in bank; same ids replace). Env: MLGRADE_RUBRICS.")]
JsonOpt = Annotated[bool, option("--json", metavar="", help="Print machine-readable JSON instead of tables.")]
SectionOpt = Annotated[Optional[str], option(
    "--section", "-s", metavar="NAME",
    help="Only this section (basic, technical, computer-vision, nlp, reinforcement-learning, company).")]
ConcurrencyHelp = "Most requests in flight at once."


def file_opt(help: str, *old: str) -> Any:
    """`--file/-f FILE`: the file to read the main text from (old long names may follow)."""
    return option("--file", *old, "-f", metavar="FILE", help=help)


def out_opt(help: str) -> Any:
    return option("--out", "-o", metavar="FILE", help=help)


def limit_opt(help: str, *old: str, **kw: Any) -> Any:
    """`--limit/-n N`: at most N of something (questions, attempts, rows)."""
    return option("--limit", *old, "-n", metavar="N", help=help, min=1, **kw)


def concurrency_opt(help: str = ConcurrencyHelp) -> Any:
    return option("--concurrency", "-c", metavar="N", help=help, show_default=True)


def refresh_flag(refresh: bool, legacy: bool = False) -> bool | None:
    """The `cache_capabilities` setting for --refresh (or its old name): False re-detects, None = configured."""
    return False if (refresh or legacy) else None


# ---- output


def _silence_stdout() -> None:
    """The reader went away (`| head -1`): send the rest of our output, and Python's final
    flush, to /dev/null so the exit is quiet. Not possible for in-memory streams (test runners)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is both of the first two
        pass


def pipe_closed() -> None:
    _silence_stdout()
    raise typer.Exit(0)


_CONSOLE_CLASS: Any = None


_TRAILING_SPACE = re.compile(r"[ \t]+(?=\n)")


def console(stderr: bool = False) -> Console:
    """A rich Console; a closed pipe on stdout ends the command quietly with status 0
    (rich's default exits 1)."""
    global _CONSOLE_CLASS
    if _CONSOLE_CLASS is None:
        from rich.console import Console

        class _Console(Console):
            def on_broken_pipe(self) -> None:
                self.quiet = True
                pipe_closed()

            def _render_buffer(self, buffer) -> str:  # type: ignore[no-untyped-def]
                text = super()._render_buffer(buffer)
                # Plain text (`mlgrade grade … > file`): tables pad every line to their width;
                # a file or a pipe gets no trailing spaces. Colour output is left as rendered.
                return _TRAILING_SPACE.sub("", text) if self.color_system is None else text

        _CONSOLE_CLASS = _Console
    return _CONSOLE_CLASS(stderr=stderr, highlight=False)


def print_error(message: str) -> None:
    """One line on stderr, prefixed `error:`; never a traceback."""
    from ..errors import redact

    from ..textfiles import safe_text

    message = redact(message) or ""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    first = safe_text(first)  # an error can quote input (an id, a cell): no control codes to the terminal
    sys.stderr.write(f"error: {first}\n")


def settings_from(**flags: Any) -> Settings:
    from ..config import load_settings

    return load_settings(**{k: (str(v) if isinstance(v, Path) else v) for k, v in flags.items()})


def require_grader_ready(settings: Settings) -> None:
    """Before an interactive session: the llm grader without a key or URL is refused now, not after
    the person has typed an answer."""
    if settings.grader_kind == "llm" and not (settings.api_key or settings.base_url):
        from ..errors import ConfigError

        raise ConfigError("the llm grader needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server); "
                          "use --grader offline to grade without one")


def bank_from(rubrics: Path | None, settings: Settings | None = None) -> RubricBank:
    from ..rubrics import load_rubrics

    return load_rubrics(rubrics if rubrics is not None else (settings.rubrics_dir if settings else None))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def command_line(ctx: typer.Context, prog: str) -> list[str]:
    """The command as given, rebuilt from its parsed parameters: arguments in order, then every
    option whose value is not its default, by its long name (what a "run this again" hint needs)."""
    args = [*prog.split()]
    options: list[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.param_type_name == "argument":
            args += [str(v) for v in value] if isinstance(value, (list, tuple)) else [] if value is None else [str(value)]
            continue
        if value is None or value == param.default or (isinstance(value, (list, tuple)) and not value):
            continue
        if getattr(param, "is_flag", False):  # "--x/--no-x": the form that gives the value
            names = param.opts if value else getattr(param, "secondary_opts", [])
            options += [max(names, key=len)] if names else []
            continue
        name = max(param.opts, key=len)
        if isinstance(value, (list, tuple)):
            for v in value:
                options += [name, str(v)]
        else:
            options += [name, f"{value:g}" if isinstance(value, float) else str(value)]
    return args + options

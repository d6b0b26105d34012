"""Shared fixtures: a temporary MLGRADE_HOME, no API key, the rubric bank, a fake grader and a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The data folder CI lays beside the project; a public clone has none, so every test that reads it
# skips with a reason. MLGRADE_TEST_SHARED points elsewhere (a missing folder: run as a public clone).
SHARED = Path(os.environ.get("MLGRADE_TEST_SHARED") or Path(__file__).resolve().parents[2] / "shared")
SEED = SHARED / "seed" / "ml-interview-questions.txt"
DATA = SHARED / "data"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """Every test gets its own data dir and no key, so nothing touches the user's store or the network."""
    home = tmp_path / "mlgrade-home"
    monkeypatch.setenv("MLGRADE_HOME", str(home))
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "MLGRADE_MODEL", "MLGRADE_GRADER", "MLGRADE_RUBRICS",
                "MLGRADE_EXEC", "MLGRADE_MAX_ANSWER_CHARS", "MLGRADE_SANDBOX", "MLGRADE_SANDBOX_NAMESPACES", "MLGRADE_JUDGE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # so no developer's .env is read
    yield home


@pytest.fixture
def home(_isolated_env) -> Path:
    return _isolated_env


@pytest.fixture
def settings():
    from mlgrade.config import load_settings

    return load_settings()


@pytest.fixture
def store(settings):
    """The SQLite store under the test's MLGRADE_HOME (a module may override `settings`)."""
    from mlgrade.store import Store

    with Store.for_settings(settings) as s:
        yield s


@pytest.fixture
def llm_settings():
    """Settings for the LLM grader against the respx-mocked endpoint of tests/llm_helpers.py."""
    from llm_helpers import BASE_URL

    from mlgrade.config import load_settings

    return load_settings(base_url=BASE_URL, model="gpt-4.1-mini", grader="llm")


@pytest.fixture
def q07(bank):
    return bank.get("q07")


@pytest.fixture(scope="session")
def bank():
    from mlgrade.rubrics import load_rubrics

    old = os.environ.pop("MLGRADE_RUBRICS", None)
    try:
        return load_rubrics()
    finally:
        if old is not None:
            os.environ["MLGRADE_RUBRICS"] = old


@pytest.fixture
def fake_grader():
    from mlgrade.graders.fake import FakeGrader

    return FakeGrader()


@pytest.fixture
def cli():
    """Run the CLI in-process: cli(["questions", "list"]) -> click Result (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from mlgrade.cli import app

    runner = CliRunner()

    def run(args, input=None, env=None):
        return runner.invoke(app, [str(a) for a in args], input=input, env=env)

    return run

"""Issue 27: hostile settings files and values (a non-UTF-8 `.env`, negative limits and timeouts)
end in one line naming the problem, never a traceback."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("content", [b"\xff\xfeO\x00P\x00", b"OPENAI_API_KEY=sk-\xe9\xff\n" * 3])
@pytest.mark.parametrize("args", [["doctor", "--offline"], ["grade", "q05", "overfitting memorises noise"]])
def test_non_utf8_dotenv_is_one_line_naming_the_file(cli, tmp_path, content, args):
    (tmp_path / ".env").write_bytes(content)
    result = cli(args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert ".env" in result.output and "not UTF-8" in result.output
    if content.startswith(b"\xff\xfe"):
        assert "UTF-16" in result.output


def test_dotenv_with_bom_still_reads(cli, tmp_path):
    from mlgrade.config import load_settings

    (tmp_path / ".env").write_bytes(b"\xef\xbb\xbfMLGRADE_MODEL=tiny\n")
    assert load_settings().model == "tiny"


@pytest.mark.parametrize(("var", "value"), [("MLGRADE_TIMEOUT", "-5"), ("MLGRADE_TIMEOUT", "nan"),
                                            ("MLGRADE_TIMEOUT", "0"), ("MLGRADE_TIMEOUT", "inf"),
                                            ("MLGRADE_MAX_ANSWER_CHARS", "-1"), ("MLGRADE_MAX_ANSWER_CHARS", "0"),
                                            ("MLGRADE_MAX_TOKENS", "-3")])
def test_limits_and_timeouts_must_be_positive(cli, monkeypatch, var, value):
    from mlgrade.config import load_settings
    from mlgrade.errors import ConfigError

    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=var):
        load_settings()
    result = cli(["grade", "q05", "overfitting memorises noise"])
    assert result.exit_code == 2 and var in result.output, result.output


def test_positive_limits_still_accepted(monkeypatch):
    from mlgrade.config import load_settings

    monkeypatch.setenv("MLGRADE_TIMEOUT", "0.5")
    monkeypatch.setenv("MLGRADE_MAX_ANSWER_CHARS", "10")
    s = load_settings()
    assert (s.timeout, s.max_answer_chars) == (0.5, 10)

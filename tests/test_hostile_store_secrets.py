"""Issue 12, the store and the cache (damage is one line and a way out, never silent loss) and
secrets (never shown or stored), plus CSV formula injection in reports."""

from __future__ import annotations

import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from batch_helpers import SlowGrader, answers, read_out, write_jsonl
from mlgrade.batch.engine import grade_many

GOOD = ("Use forward chaining (TimeSeriesSplit): train on the past and test on the block that follows. "
        "Shuffled k-fold leaks the future because observations are autocorrelated.")


def one_line_exit_2(res) -> str:  # type: ignore[no-untyped-def]
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, res.stderr
    return errors[0]


# --------------------------------------------------------------------------- a damaged store


def _fill_store(home: Path, n: int = 400) -> Path:
    from mlgrade.store import Store

    with Store(home / "mlgrade.db") as store:
        for i in range(n):
            store.add_attempt({"question_id": "q07", "outcome": "graded", "score": 50.0, "band": "weak",
                               "grader": "offline", "model": "", "judgments": []}, "an answer " * 40)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return home / "mlgrade.db"


def _damage(db: Path, how: str) -> None:
    if how == "garbage":
        db.write_bytes(b"this is not a database at all " * 200)
    else:
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("how", ["garbage", "cut in half"])
@pytest.mark.parametrize("command", [["stats"], ["history"], ["history", "--json"], ["batch", "IN", "--out", "OUT"]])
def test_damaged_store_is_one_line_naming_the_path_and_the_fix(tmp_path, home, cli, how, command):
    db = _fill_store(home)
    _damage(db, how)
    before = db.read_bytes()
    inp = write_jsonl(tmp_path / "in.jsonl", answers(2))
    args = [str(inp) if a == "IN" else str(tmp_path / "out.jsonl") if a == "OUT" else a for a in command]
    err = one_line_exit_2(cli([*args, "--grader", "offline"] if command[0] == "batch" else args))
    assert str(db) in err and "damaged" in err and "--reset-damaged-store" in err
    assert db.read_bytes() == before  # nothing silently dropped or rewritten


def test_doctor_reports_the_damage_and_moves_it_aside_on_request(home, cli):
    db = _fill_store(home)
    _damage(db, "garbage")
    before = db.read_bytes()
    report = cli(["doctor", "--offline", "--json"])
    data = json.loads(report.stdout)
    assert report.exit_code == 2 and data["store"]["damaged"] and "damaged" in data["store"]["problem"]
    res = cli(["doctor", "--offline", "--reset-damaged-store"])
    assert "moved the damaged history database to" in res.stderr
    kept = list(home.glob("mlgrade.db.damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == before  # kept, not deleted
    assert res.exit_code == 0
    assert cli(["stats", "--json"]).exit_code == 0  # a fresh store works


def test_a_healthy_store_is_never_moved(home, cli):
    db = _fill_store(home, 3)
    res = cli(["doctor", "--offline", "--reset-damaged-store"])
    assert res.exit_code == 0 and "not damaged" in res.stderr and db.exists()
    assert not list(home.glob("mlgrade.db.damaged-*"))


def test_cache_row_with_invalid_json_is_a_miss_regraded_and_replaced(tmp_path, home, bank):
    from mlgrade.store import Store

    inp = write_jsonl(tmp_path / "in.jsonl", answers(3))
    grade_many([inp], tmp_path / "one.jsonl", grader=SlowGrader(), bank=bank)
    with Store(home / "mlgrade.db") as store:
        store.db.execute("UPDATE response_cache SET grade_json = '{not json'")
        store.db.execute("UPDATE response_cache SET grade_json = '[1, 2]' WHERE rowid = 1")
    grader = SlowGrader()
    summary = grade_many([inp], tmp_path / "two.jsonl", grader=grader, bank=bank)
    assert len(grader.calls) == 3 and summary.run.cache_hits == 0
    assert all(r["outcome"] == "graded" for r in read_out(tmp_path / "two.jsonl"))
    with Store(home / "mlgrade.db") as store:
        for (text,) in store.db.execute("SELECT grade_json FROM response_cache").fetchall():
            assert json.loads(text)["outcome"] == "graded"  # replaced
    third = SlowGrader()
    assert grade_many([inp], tmp_path / "three.jsonl", grader=third, bank=bank).run.cache_hits == 3


@pytest.mark.parametrize("kind", ["file", "uncreatable"])
@pytest.mark.parametrize("command", [["stats"], ["history"], ["batch", "IN", "--out", "OUT", "--grader", "offline"]])
def test_mlgrade_home_unusable_is_one_line_naming_the_variable(tmp_path, cli, monkeypatch, kind, command):
    bad = tmp_path / "a-file" if kind == "file" else Path("/proc/nope/mlgrade")
    if kind == "file":
        bad.write_text("x")
    monkeypatch.setenv("MLGRADE_HOME", str(bad))
    inp = write_jsonl(tmp_path / "in.jsonl", answers(2))
    args = [str(inp) if a == "IN" else str(tmp_path / "out.jsonl") if a == "OUT" else a for a in command]
    err = one_line_exit_2(cli(args))
    assert f"MLGRADE_HOME={bad}" in err


@pytest.mark.parametrize("kind", ["file", "uncreatable"])
def test_doctor_reports_the_same_home_problem(tmp_path, cli, monkeypatch, kind):
    bad = tmp_path / "a-file" if kind == "file" else Path("/proc/nope/mlgrade")
    if kind == "file":
        bad.write_text("x")
    monkeypatch.setenv("MLGRADE_HOME", str(bad))
    res = cli(["doctor", "--offline", "--json"])
    data = json.loads(res.stdout)
    assert res.exit_code == 2 and f"MLGRADE_HOME={bad}" in data["store"]["problem"]
    assert f"MLGRADE_HOME={bad}" in data["verdict"]
    assert "not created yet" not in cli(["doctor", "--offline"]).stdout


# --------------------------------------------------------------------------- secrets

CANARY = "sk-canary-0123456789abcdefXYZ"


class _EchoAuth(BaseHTTPRequestHandler):
    """An endpoint whose error message echoes the Authorization header (as some proxies do)."""

    status = 401

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = json.dumps({"error": {"message": f"bad credentials: Authorization: {self.headers.get('authorization')}"
                                                f" (key {CANARY})", "type": "invalid_request_error"}}).encode()
        self.send_response(self.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_server(monkeypatch):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _EchoAuth)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{srv.server_address[1]}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    monkeypatch.setenv("MLGRADE_MODEL", "gpt-4.1-mini")
    yield srv
    srv.shutdown()


def test_a_key_echoed_by_the_endpoint_is_never_shown_or_stored(tmp_path, cli, echo_server, home):
    panel = cli(["grade", "q07", GOOD])
    assert panel.exit_code == 1 and "Grading failed" in panel.stdout
    as_json = cli(["grade", "q07", GOOD, "--json"])
    assert json.loads(as_json.stdout)["outcome"] == "grader_error"
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "k1", "question_id": "q07", "answer": GOOD}])
    out = tmp_path / "out.jsonl"
    batch = cli(["batch", inp, "--out", out])
    report = cli(["report", out])
    html = cli(["report", out, "--format", "html"])
    csv_report = cli(["report", out, "--format", "csv"])
    seen = [panel.output, as_json.output, batch.output, out.read_text(), report.output, html.output, csv_report.output]
    for text in seen:
        assert CANARY not in text and "canary-0123" not in text
    assert "[REDACTED]" in json.loads(as_json.stdout)["error"] or "[REDACTED]" in (json.loads(as_json.stdout).get("raw_reply") or "")
    rows = read_out(out)
    if rows:  # a fatal 401 stops the batch before writing; when written, the line is clean
        assert CANARY not in json.dumps(rows)
    for db_file in home.glob("mlgrade.db*"):
        assert CANARY.encode() not in db_file.read_bytes()


def test_redact_covers_keys_tokens_and_url_credentials():
    from mlgrade.errors import redact, register_secret

    register_secret("my-configured-key-42")
    text = ("401: header was 'Authorization: Bearer abc.DEF-123' and key my-configured-key-42, also sk-proj-AbC123xyz789; "
            "see https://alice:s3cret@proxy.example/v1?token=tok123&x=1 and http://tok999@host/v1?api_key=zz")
    clean = redact(text)
    for secret in ("abc.DEF-123", "my-configured-key-42", "sk-proj-AbC123xyz789", "alice", "s3cret", "tok123",
                   "tok999", "zz"):
        assert secret not in clean, secret
    assert "x=1" in clean and "proxy.example/v1" in clean
    assert redact("a plain message about key points, nothing secret") == "a plain message about key points, nothing secret"


def test_grader_errors_are_redacted_where_they_are_made(bank):
    from mlgrade.errors import GraderFailure
    from mlgrade.grading import error_grade
    from mlgrade.graders.fake import FakeGrader

    failure = GraderFailure("HTTP 500: Authorization: Bearer sk-live-abcdef123456", raw_reply="key=sk-live-abcdef123456")
    grade = error_grade(bank.get("q07"), failure, grader=FakeGrader())
    assert "sk-live" not in (grade.error or "") and "sk-live" not in (grade.raw_reply or "")


def test_base_url_credentials_are_not_printed_by_doctor_nor_stored(cli, monkeypatch, home):
    from mlgrade.store import Store

    url = "http://bob:hunter2pass@127.0.0.1:9/v1?token=qwertytoken"
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    for args in (["doctor", "--offline"], ["doctor", "--offline", "--json"], ["doctor"], ["doctor", "--json"]):
        res = cli(args)
        for secret in ("bob", "hunter2pass", "qwertytoken"):
            assert secret not in res.output, (args, res.output)
    with Store(home / "mlgrade.db") as store:
        store.capabilities_put(url, "m", {"response_format": "json_object"})
        assert store.capabilities_get(url, "m") == {"response_format": "json_object"}
        stored = [r[0] for r in store.db.execute("SELECT base_url FROM capabilities").fetchall()]
    assert stored and all("hunter2pass" not in s and "qwertytoken" not in s and "bob" not in s for s in stored)


# --------------------------------------------------------------------------- CSV formula injection


def test_csv_report_neutralises_formulas_and_jsonl_keeps_the_raw_text(tmp_path, cli):
    out = tmp_path / "out.jsonl"
    rows = []
    for i, (cand, err) in enumerate([("=HYPERLINK(\"http://x\",\"y\")", "=1+1"), ("+cmd", "@SUM(A1)"),
                                     ("-2+3", "\tTAB"), ("@me", "\rCR"), ("alice", "plain")]):
        rows.append({"id": f"r{i}", "candidate": cand, "source": "in.jsonl", "question_id": "q07",
                     "outcome": "skipped", "error": err})
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = cli(["report", out, "--format", "csv"])
    assert res.exit_code == 0, res.output
    import csv
    import io

    table = list(csv.DictReader(io.StringIO(res.stdout_bytes.decode(), newline="")))
    assert [r["candidate"] for r in table] == ["'=HYPERLINK(\"http://x\",\"y\")", "'+cmd", "'-2+3", "'@me", "alice"]
    assert [r["error"] for r in table] == ["'=1+1", "'@SUM(A1)", "'\tTAB", "'\nCR", "plain"]
    assert read_out(out)[0]["candidate"].startswith("=HYPERLINK")  # the results file keeps the raw text


def test_llm_batch_without_cache_and_a_broken_home_is_one_line_not_per_item_errors(tmp_path, cli, monkeypatch):
    from fake_openai_server import FakeOpenAIServer

    bad = tmp_path / "a-file"
    bad.write_text("x")
    monkeypatch.setenv("MLGRADE_HOME", str(bad))
    inp = write_jsonl(tmp_path / "in.jsonl", answers(3))
    out = tmp_path / "out.jsonl"
    with FakeOpenAIServer() as srv:
        res = cli(["batch", inp, "--out", out, "--no-cache"], env={"OPENAI_BASE_URL": srv.base_url})
    err = one_line_exit_2(res)
    assert f"MLGRADE_HOME={bad}" in err
    assert not out.exists() or "grader_error" not in out.read_text()


def test_garbage_store_is_reported_before_the_batch_progress_starts(tmp_path, home, cli):
    db = _fill_store(home, 3)
    _damage(db, "garbage")
    inp = write_jsonl(tmp_path / "in.jsonl", answers(2))
    res = cli(["batch", inp, "--out", tmp_path / "out.jsonl", "--grader", "offline"])
    assert res.exit_code == 2 and res.stderr.startswith("error: the history database at ")

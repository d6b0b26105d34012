"""The SQLite store: migrations from an empty db, two processes appending at once, and a
writer killed with SIGKILL mid-transaction (the db opens, earlier attempts intact)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mlgrade import store as store_mod
from mlgrade.store import MIGRATIONS, SCHEMA_VERSION, Store

TABLES = {"attempts", "response_cache", "capabilities", "derived_rubrics", "schema_version"}


def _grade(qid: str = "q05", score: float = 50.0) -> dict:
    return {"question_id": qid, "outcome": "graded", "score": score, "band": "weak", "grader": "fake", "model": "m"}


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")} - {"sqlite_sequence"}


def test_empty_db_migrates_to_the_current_version(tmp_path):
    path = tmp_path / "new.db"
    with Store(path) as s:
        assert s.schema_version() == SCHEMA_VERSION
        versions = [r[0] for r in s.db.execute("SELECT version FROM schema_version ORDER BY version")]
        assert versions == [v for v, _, _ in MIGRATIONS]
        s.add_attempt(_grade(), "an answer")
    assert TABLES <= _tables(path)
    with Store(path) as again:  # reopening applies nothing twice and keeps the data
        assert again.schema_version() == SCHEMA_VERSION
        assert again.db.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == len(MIGRATIONS)
        assert again.db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 1


def test_a_new_migration_upgrades_an_old_db_and_keeps_its_data(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    with Store(path) as s:
        s.add_attempt(_grade(score=70), "kept")

    def add_note(db):
        db.execute("ALTER TABLE attempts ADD COLUMN note TEXT")

    monkeypatch.setattr(store_mod, "MIGRATIONS", [*MIGRATIONS, (SCHEMA_VERSION + 1, "note column", add_note)])
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with Store(path) as s:
        assert s.schema_version() == SCHEMA_VERSION + 1
        row = s.db.execute("SELECT answer, score, note FROM attempts").fetchone()
        assert tuple(row) == ("kept", 70.0, None)


def test_a_failing_migration_changes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "db.db"
    Store(path).close()

    def half_done(db):
        db.execute("CREATE TABLE half (x)")
        raise RuntimeError("migration bug")

    monkeypatch.setattr(store_mod, "MIGRATIONS", [*MIGRATIONS, (SCHEMA_VERSION + 1, "broken", half_done)])
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(RuntimeError):
        Store(path)
    assert "half" not in _tables(path)  # rolled back as one transaction
    monkeypatch.undo()
    with Store(path) as s:
        assert s.schema_version() == SCHEMA_VERSION


def test_grader_errors_cannot_carry_a_score(tmp_path):
    with Store(tmp_path / "db.db") as s, pytest.raises(sqlite3.IntegrityError):
        s.add_attempt({"question_id": "q05", "outcome": "grader_error", "score": 10.0, "error": "x"}, "a")


# --------------------------------------------------------------------------- several processes

WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from mlgrade.store import Store
    path, name, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    while not go.exists():  # start together, so the writes really interleave
        time.sleep(0.005)
    store = Store(path)  # both may find an empty db and migrate at once
    for i in range(n):
        store.add_attempt({"question_id": "q05", "outcome": "graded", "score": float(i % 100), "band": "weak"},
                          f"{name}-{i}", session_id=name)
    print("done", flush=True)
    """
)


def _python(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_two_processes_append_concurrently(tmp_path):
    path, go, n = tmp_path / "shared.db", tmp_path / "go", 150
    procs = [_python("-c", WRITER, str(path), name, str(n), str(go)) for name in ("alpha", "beta")]
    time.sleep(0.3)
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.strip() == "done"
    with Store(path) as s:
        rows = s.db.execute("SELECT session_id, answer FROM attempts ORDER BY id").fetchall()
        assert s.schema_version() == SCHEMA_VERSION
        assert s.db.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == len(MIGRATIONS)
    assert len(rows) == 2 * n
    for name in ("alpha", "beta"):
        mine = [r["answer"] for r in rows if r["session_id"] == name]
        assert mine == [f"{name}-{i}" for i in range(n)]  # every write kept, in each writer's order


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from mlgrade.store import Store
    store = Store(sys.argv[1])
    for i in range(5):
        store.add_attempt({"question_id": "q05", "outcome": "graded", "score": 60.0, "band": "adequate"}, f"kept-{i}")
    store.db.execute("BEGIN IMMEDIATE")
    store.db.execute("INSERT INTO attempts (question_id, answer, outcome, grade_json, created_at)"
                     " VALUES ('q05', 'half-written', 'graded', '{}', 'now')")
    store.db.execute("INSERT INTO response_cache VALUES ('k', '{}', 'now')")
    print("inside", flush=True)
    time.sleep(60)
    """
)


def test_kill_9_mid_transaction_keeps_earlier_attempts(tmp_path):
    path = tmp_path / "crash.db"
    proc = _python("-c", KILLED_WRITER, str(path))
    assert proc.stdout.readline().strip() == "inside", proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    with Store(path) as s:
        assert s.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        answers = [r[0] for r in s.db.execute("SELECT answer FROM attempts ORDER BY id")]
        assert answers == [f"kept-{i}" for i in range(5)]
        assert s.cache_get("k") is None  # the rest of the killed transaction is gone too
        s.add_attempt(_grade(), "after the crash")  # the write lock died with the writer
        assert s.db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 6


STREAMING_WRITER = textwrap.dedent(
    """
    import sys
    from mlgrade.store import Store
    store = Store(sys.argv[1])
    i = 0
    while True:
        store.add_attempt({"question_id": "q05", "outcome": "graded", "score": 1.0, "band": "poor"}, "x" * 2000 + str(i))
        print(i, flush=True)
        i += 1
    """
)


def test_kill_9_while_appending_loses_at_most_the_attempt_in_flight(tmp_path):
    path = tmp_path / "stream.db"
    proc = _python("-c", STREAMING_WRITER, str(path))
    committed = -1
    for line in proc.stdout:
        committed = int(line)
        if committed >= 200:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    with Store(path) as s:
        assert s.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = s.db.execute("SELECT answer, grade_json FROM attempts ORDER BY id").fetchall()
    # everything reported committed is there, plus at most the ones committed after the last read
    assert len(rows) >= committed + 1
    assert [r["answer"] for r in rows] == ["x" * 2000 + str(i) for i in range(len(rows))]
    assert all(json.loads(r["grade_json"])["question_id"] == "q05" for r in rows)

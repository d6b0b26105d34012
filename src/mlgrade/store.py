"""The local SQLite store under MLGRADE_HOME: practice history, the response cache, endpoint
capabilities and derived rubrics.

Schema changes are registered migrations, applied in order inside one transaction each, and
recorded in `schema_version`. Add a migration at the end of MIGRATIONS; never edit a shipped one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def _m1_initial(db: sqlite3.Connection) -> None:
    # One execute per statement: executescript() would COMMIT first and break the migration's transaction
    _execute_each(db,
        """
        CREATE TABLE attempts (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id  TEXT,
            question_id TEXT NOT NULL,
            answer      TEXT NOT NULL,
            outcome     TEXT NOT NULL CHECK (outcome IN ('graded', 'grader_error', 'skipped')),
            score       REAL,
            band        TEXT,
            grader      TEXT,
            model       TEXT,
            error       TEXT,
            grade_json  TEXT NOT NULL,
            started_at  TEXT,
            created_at  TEXT NOT NULL,
            CHECK (outcome = 'graded' OR score IS NULL)
        );
        CREATE INDEX attempts_question ON attempts (question_id, created_at);
        CREATE TABLE response_cache (
            key        TEXT PRIMARY KEY,
            grade_json TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE capabilities (
            base_url   TEXT NOT NULL,
            model      TEXT NOT NULL,
            data_json  TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (base_url, model)
        );
        CREATE TABLE derived_rubrics (
            key         TEXT PRIMARY KEY,
            rubric_yaml TEXT NOT NULL,
            created_at  TEXT NOT NULL
        );
        """
    )


def _execute_each(db: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


MIGRATIONS: list[tuple[int, str, Callable[[sqlite3.Connection], None]]] = [
    (1, "initial: attempts, response cache, capabilities, derived rubrics", _m1_initial),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Store:
    """One SQLite file. Open with `Store(path)`; every public method is its own transaction."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so each write is one explicit transaction
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=30000")
        self.migrate()

    @classmethod
    def for_settings(cls, settings: Any) -> Store:
        return cls(settings.db_path)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front, so two processes never deadlock upgrading
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    # ------------------------------------------------------------------ migrations

    def schema_version(self) -> int:
        exists = self.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'").fetchone()
        if not exists:
            return 0
        row = self.db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return row[0] or 0

    def migrate(self) -> int:
        """Apply pending migrations; safe to call from several processes at once."""
        if self.schema_version() >= SCHEMA_VERSION:
            return SCHEMA_VERSION
        with self.transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, description TEXT, applied_at TEXT)")
            current = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
            for version, description, apply in MIGRATIONS:
                if version > current:
                    apply(db)
                    db.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (version, description, now_iso()))
        return SCHEMA_VERSION

    # ------------------------------------------------------------------ response cache

    def cache_get(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT grade_json FROM response_cache WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def cache_put(self, key: str, grade: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO response_cache VALUES (?, ?, ?)", (key, json.dumps(grade), now_iso()))

    # ------------------------------------------------------------------ capabilities

    def capabilities_get(self, base_url: str, model: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT data_json FROM capabilities WHERE base_url = ? AND model = ?", (base_url, model)).fetchone()
        return json.loads(row[0]) if row else None

    def capabilities_put(self, base_url: str, model: str, data: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO capabilities VALUES (?, ?, ?, ?)", (base_url, model, json.dumps(data), now_iso()))

    def capabilities_clear(self, base_url: str | None = None) -> None:
        with self.transaction() as db:
            if base_url is None:
                db.execute("DELETE FROM capabilities")
            else:
                db.execute("DELETE FROM capabilities WHERE base_url = ?", (base_url,))

    # ------------------------------------------------------------------ derived rubrics

    def derived_get(self, key: str) -> str | None:
        row = self.db.execute("SELECT rubric_yaml FROM derived_rubrics WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def derived_put(self, key: str, rubric_yaml: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO derived_rubrics VALUES (?, ?, ?)", (key, rubric_yaml, now_iso()))

    # ------------------------------------------------------------------ attempts (history)

    def add_attempt(self, grade: dict[str, Any], answer: str, *, session_id: str | None = None,
                    started_at: str | None = None) -> int:
        """Record one attempt (graded, grader_error or skipped) in its own transaction."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO attempts (session_id, question_id, answer, outcome, score, band, grader, model, error,"
                " grade_json, started_at, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (session_id, grade["question_id"], answer, grade["outcome"], grade.get("score"), grade.get("band"),
                 grade.get("grader"), grade.get("model"), grade.get("error"), json.dumps(grade), started_at, now_iso()),
            )
            return int(cur.lastrowid)


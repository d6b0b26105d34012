"""The store's schema, as registered migrations: each is applied in order inside one transaction
and recorded in `schema_version` (store.Store does that). Add a migration at the end of MIGRATIONS;
never edit a shipped one."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

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


def _m2_interviews(db: sqlite3.Connection) -> None:
    # kind: a follow-up answer is graded against its follow-up's own key points, so it must never
    # feed the main question's schedule or statistics; parent_id links it to the main attempt.
    # An interview's attempts carry its id as their session_id.
    _execute_each(db,
        """
        ALTER TABLE attempts ADD COLUMN kind TEXT NOT NULL DEFAULT 'main' CHECK (kind IN ('main', 'follow_up'));
        ALTER TABLE attempts ADD COLUMN parent_id INTEGER REFERENCES attempts (id);
        CREATE TABLE interviews (
            id          TEXT PRIMARY KEY,
            status      TEXT NOT NULL CHECK (status IN ('open', 'finished', 'ended')),
            state_json  TEXT NOT NULL,
            report_path TEXT,
            created_at  TEXT NOT NULL,
            updated_at  TEXT NOT NULL
        );
        CREATE INDEX interviews_updated ON interviews (updated_at)
        """
    )


def _m3_measurements(db: sqlite3.Connection) -> None:
    # one row per `mlgrade eval --builtin` run of one grader setting (measured.py reads them)
    _execute_each(db,
        """
        CREATE TABLE IF NOT EXISTS measurements (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            grader      TEXT NOT NULL,
            model       TEXT NOT NULL,
            base_url    TEXT NOT NULL,
            judge       TEXT NOT NULL,
            samples     INTEGER NOT NULL,
            prompt_hash TEXT NOT NULL,
            rubric_hash TEXT NOT NULL,
            answers     INTEGER NOT NULL,
            data_json   TEXT NOT NULL,
            created_at  TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS measurements_setting ON measurements (grader, model, base_url, judge, created_at)
        """
    )


MIGRATIONS: list[tuple[int, str, Callable[[sqlite3.Connection], None]]] = [
    (1, "initial: attempts, response cache, capabilities, derived rubrics", _m1_initial),
    (2, "interviews; follow-up attempts linked to their main attempt", _m2_interviews),
    (3, "measurements: the built-in expert benchmark per grader setting", _m3_measurements),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]

"""The local SQLite store under MLGRADE_HOME: practice history, the response cache, endpoint
capabilities and derived rubrics.

Schema changes are registered migrations, applied in order inside one transaction each, and
recorded in `schema_version`. Add a migration at the end of MIGRATIONS; never edit a shipped one.

A damaged database file (cut short, overwritten) raises DamagedStoreError, one line naming the
file and the fix: `mlgrade doctor --reset-damaged-store` moves it aside to
`mlgrade.db.damaged-<time>` (nothing is deleted) and a fresh store starts on next use. A cache
row that does not parse is a miss. Base URLs are stored without credentials.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import ConfigError, redact_url
from .store_migrations import MIGRATIONS, SCHEMA_VERSION

DAMAGED_HINT = "run `mlgrade doctor --reset-damaged-store` to move it aside and start a fresh one (nothing is deleted)"


class DamagedStoreError(ConfigError):
    """The SQLite file is not a usable database. `path` is the file."""

    def __init__(self, path: Path, detail: str):
        self.path = path
        super().__init__(f"the history database at {path} is damaged ({detail}): {DAMAGED_HINT}")


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    # "file is not a database", "database disk image is malformed"; not "locked" or a constraint
    text = str(exc).lower()
    return type(exc) is sqlite3.DatabaseError or "malformed" in text or "not a database" in text


class _Cursor(sqlite3.Cursor):
    """Reads that hit a damaged page become DamagedStoreError (a page is read as rows are fetched)."""

    def _damaged(self, exc: sqlite3.DatabaseError) -> Exception:
        return DamagedStoreError(self.connection.store_path, str(exc)) if _is_damage(exc) else exc  # type: ignore[attr-defined]

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        try:
            return super().fetchmany(size) if size is not None else super().fetchmany()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None


class _Connection(sqlite3.Connection):
    store_path: Path

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        cur = self.cursor(_Cursor)
        try:
            return cur.execute(sql, parameters)
        except sqlite3.DatabaseError as exc:
            if _is_damage(exc):
                raise DamagedStoreError(self.store_path, str(exc)) from None
            raise


def ensure_folder(folder: Path, what: str) -> None:
    """Create the store's folder or raise ConfigError naming it (`what`, e.g. MLGRADE_HOME=…)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"{what} is a file, not a folder: point it at a folder mlgrade can create") from None
    except OSError as exc:
        raise ConfigError(f"{what} cannot be created ({exc.strerror}): point it at a folder mlgrade can write") from None
    if not folder.is_dir():
        raise ConfigError(f"{what} is not a folder: point it at a folder mlgrade can create")


def home_label(settings: Any) -> str:
    """How to name the data folder in a message: the variable when it came from one."""
    source = settings.sources.get("home", "default") if hasattr(settings, "sources") else "default"
    if "MLGRADE_HOME" in source:
        return f"MLGRADE_HOME={settings.home}"
    return f"the data folder {settings.home}"


def move_aside(path: str | Path) -> Path:
    """Rename a (damaged) database and its -wal/-shm files to `<name>.damaged-<UTC time>`;
    returns the new path. The next Store(path) starts a fresh database."""
    path = Path(path)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    path.rename(target)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    return target


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Store:
    """One SQLite file. Open with `Store(path)`; every public method is its own transaction."""

    def __init__(self, path: str | Path, *, folder_label: str | None = None):
        self.path = Path(path)
        ensure_folder(self.path.parent, folder_label or f"the store folder {self.path.parent}")
        if self.path.exists() and not self.path.is_file():
            raise ConfigError(f"the history database at {self.path} is not a file: move it away")
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so each write is one explicit transaction
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False,
                                      factory=_Connection)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the history database at {self.path} ({exc})") from None
        self.db.store_path = self.path  # type: ignore[attr-defined]
        self.db.row_factory = sqlite3.Row
        try:
            self._set_up()
        except BaseException:
            self.db.close()
            raise

    def _set_up(self) -> None:
        # Two processes opening a new file at once: switching it to WAL can answer "database is
        # locked" at once instead of waiting on the busy timeout, so that step is retried briefly.
        deadline = time.monotonic() + 30
        for attempt in itertools.count(1):
            try:
                self.db.execute("PRAGMA busy_timeout=30000")
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.migrate()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(min(0.5, 0.02 * attempt))

    @classmethod
    def for_settings(cls, settings: Any) -> Store:
        return cls(settings.db_path, folder_label=home_label(settings))

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
            try:
                self.db.execute("ROLLBACK")
            except (sqlite3.Error, ConfigError):
                pass  # a damaged file may refuse the rollback too: the first error is the one to report
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
        if not row:
            return None
        try:
            data = json.loads(row[0])
        except (ValueError, TypeError, RecursionError):
            return None  # a damaged row is a miss: the answer is regraded and the row replaced
        return data if isinstance(data, dict) else None

    def cache_put(self, key: str, grade: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO response_cache VALUES (?, ?, ?)", (key, json.dumps(grade), now_iso()))

    # ------------------------------------------------------------------ capabilities

    # keyed by the base URL without credentials (user:pass@, ?token=): a secret is never stored

    def capabilities_get(self, base_url: str, model: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT data_json FROM capabilities WHERE base_url = ? AND model = ?",
                              (redact_url(base_url), model)).fetchone()
        if not row:
            return None
        try:
            data = json.loads(row[0])
        except (ValueError, TypeError):
            return None  # re-detected and replaced
        return data if isinstance(data, dict) else None

    def capabilities_put(self, base_url: str, model: str, data: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO capabilities VALUES (?, ?, ?, ?)",
                       (redact_url(base_url), model, json.dumps(data), now_iso()))

    def capabilities_clear(self, base_url: str | None = None) -> None:
        with self.transaction() as db:
            if base_url is None:
                db.execute("DELETE FROM capabilities")
            else:
                db.execute("DELETE FROM capabilities WHERE base_url = ?", (redact_url(base_url),))

    # ------------------------------------------------------------------ derived rubrics

    def derived_get(self, key: str) -> str | None:
        row = self.db.execute("SELECT rubric_yaml FROM derived_rubrics WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def derived_put(self, key: str, rubric_yaml: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO derived_rubrics VALUES (?, ?, ?)", (key, rubric_yaml, now_iso()))

    # ------------------------------------------------------------------ attempts (history)

    def add_attempt(self, grade: dict[str, Any], answer: str, *, session_id: str | None = None,
                    started_at: str | None = None, kind: str = "main", parent_id: int | None = None) -> int:
        """Record one attempt (graded, grader_error or skipped) in its own transaction. `kind` is
        "main" or "follow_up" (then `parent_id` is the main attempt it follows)."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO attempts (session_id, question_id, answer, outcome, score, band, grader, model, error,"
                " grade_json, started_at, created_at, kind, parent_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (session_id, grade["question_id"], answer, grade["outcome"], grade.get("score"), grade.get("band"),
                 grade.get("grader"), grade.get("model"), grade.get("error"), json.dumps(grade), started_at, now_iso(),
                 kind, parent_id),
            )
            return int(cur.lastrowid)

    # ------------------------------------------------------------------ interviews

    def interview_put(self, interview_id: str, status: str, state: dict[str, Any], *,
                      report_path: str | None = None) -> None:
        """Create or update one interview (its whole state as JSON) in its own transaction."""
        now = now_iso()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO interviews (id, status, state_json, report_path, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
                " state_json = excluded.state_json, report_path = COALESCE(excluded.report_path, report_path),"
                " updated_at = excluded.updated_at",
                (interview_id, status, json.dumps(state), report_path, now, now),
            )

    def interview_rows(self, *, interview_id: str | None = None, status: str | None = None,
                       limit: int | None = None) -> list[sqlite3.Row]:
        """Interviews, most recently updated first (filtered by id prefix or status)."""
        sql = "SELECT id, status, state_json, report_path, created_at, updated_at FROM interviews"
        where, args = [], []  # type: ignore[var-annotated]
        if interview_id:
            where.append("id LIKE ? ESCAPE '\\'")
            args.append(interview_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        if status:
            where.append("status = ?")
            args.append(status)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY updated_at DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return list(self.db.execute(sql, args))


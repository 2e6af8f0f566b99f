"""One SQLite connection in WAL mode, shared by the typed tables of a store."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sslviz.store.schema import MIGRATIONS


class Connection:
    """A thread-safe wrapper: Streamlit calls in from several threads, the worker from one.

    WAL lets the app read while a worker process writes; ``busy_timeout`` makes a writer wait for
    another process's write instead of failing at once.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        # Foreign keys stay off while migrating: a migration that rebuilds a table drops the old
        # one, which must not cascade into the rows that reference it.
        self._migrate()
        self._conn.execute("PRAGMA foreign_keys=ON")

    def _migrate(self) -> None:
        with self.transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"{self.path} has schema version {version}, newer than this sslviz "
                    f"({len(MIGRATIONS)}): upgrade sslviz or use another SSLVIZ_HOME"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"{self.path}: migration left dangling references: {broken[:5]}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error), holding the thread lock."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, params)

    def query(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def set_busy_timeout(self, seconds: float) -> None:
        """How long a write waits for another connection's lock before ``database is locked``."""
        with self._lock:
            self._conn.execute(f"PRAGMA busy_timeout={max(0, round(seconds * 1000))}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

"""One SQLite database file per workspace, shared by the local adapters (WAL, busy timeout)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    owner TEXT NOT NULL,
    lease_expires_at REAL NOT NULL,
    result TEXT NOT NULL DEFAULT '{}',
    attempts INTEGER NOT NULL DEFAULT 1,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    detail_type TEXT NOT NULL,
    detail TEXT NOT NULL,
    time TEXT NOT NULL,
    correlation_id TEXT,
    dataset_id TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_correlation ON events (correlation_id);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL REFERENCES events (id),
    route TEXT NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL,           -- pending | running | delivered | dead
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    lease_owner TEXT,
    lease_expires_at REAL,
    last_error TEXT,
    outcome TEXT,
    result TEXT,
    updated_at REAL NOT NULL,
    UNIQUE (event_id, route)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS analyses (
    dataset_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    summary TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS analyses_created ON analyses (created_at);
CREATE TABLE IF NOT EXISTS flagged (
    dataset_id TEXT NOT NULL,
    item_key TEXT NOT NULL,
    user_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at REAL NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (dataset_id, item_key)
);
CREATE INDEX IF NOT EXISTS flagged_user ON flagged (user_key, created_at);
CREATE TABLE IF NOT EXISTS participant_days (
    pseudonym TEXT NOT NULL,
    day TEXT NOT NULL,              -- reading day, YYYY-MM-DD
    dataset_id TEXT NOT NULL,
    histogram TEXT NOT NULL,        -- documents.history.DayHistogram JSON
    PRIMARY KEY (pseudonym, day, dataset_id)
);
CREATE TABLE IF NOT EXISTS metrics (
    ts REAL NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    unit TEXT NOT NULL,
    stage TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_name ON metrics (name, ts);
"""


BUSY_TIMEOUT_S = 30.0


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the database to WAL once. SQLite answers "database is locked" at once, without
    waiting, when processes open a new database together and one of them is switching it:
    retried until the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.01
    while True:
        try:
            (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


class Database:
    """A thread-safe handle on the workspace database; each call runs in one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        _use_wal(self._conn)
        self._conn.execute("PRAGMA synchronous=NORMAL")
        # Under the write lock: a plain CREATE … IF NOT EXISTS reads the schema first and
        # fails at once ("database is locked") when another process wrote it meanwhile.
        with self.transaction() as conn:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT: writers across processes are serialised by SQLite."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def compact(self) -> None:
        """Leave no byte of a deleted row in the files: VACUUM rewrites the database without
        its free pages, and a TRUNCATE checkpoint empties the WAL (erasure needs both)."""
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

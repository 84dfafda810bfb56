"""Processes that open a new workspace database at the same moment all get it.

Two `healthpipe run` processes on a fresh workspace once failed with "database is locked":
SQLite answers at once, without waiting, when one process switches the new file to WAL while
another opens it. Bounded: 12 rounds of 6 processes (the race hit about one round in 80
before the fix)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from healthpipe.adapters.local.sqlite import Database

PROCESSES = 6
ROUNDS = 12


def _open_and_write(path: str, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    try:
        db = Database(Path(path))
        with db.transaction() as conn:
            conn.execute("INSERT INTO metrics VALUES (1, 'opened', 1, 'Count', 'test')")
        db.close()
        results.put("ok")
    except Exception as exc:  # reported to the test, which fails on it
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_database_together_all_succeed(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for round_no in range(ROUNDS):
        path = tmp_path / f"round-{round_no}" / "healthpipe.db"
        path.parent.mkdir()
        results = context.Queue()
        procs = [
            context.Process(target=_open_and_write, args=(str(path), results))
            for _ in range(PROCESSES)
        ]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        assert outcomes == ["ok"] * PROCESSES, outcomes
        db = Database(path)
        assert db.query("SELECT count(*) AS n FROM metrics")[0]["n"] == PROCESSES
        assert db.query("PRAGMA journal_mode")[0][0] == "wal"
        db.close()

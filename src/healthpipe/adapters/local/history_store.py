"""Participants' per-day histograms in SQLite (table `participant_days`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from healthpipe.adapters.local.sqlite import Database
from healthpipe.domain.documents import JsonObject
from healthpipe.ports import ParticipantHistoryStore

LOAD_BATCH = 500  # pseudonyms per query (SQLite's variable limit is far above)


class SqliteParticipantHistoryStore(ParticipantHistoryStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    def _load(self, pseudonyms: list[str], since: str, until: str) -> list[str]:
        found: list[str] = []
        for i in range(0, len(pseudonyms), LOAD_BATCH):
            batch = pseudonyms[i : i + LOAD_BATCH]
            marks = ", ".join("?" * len(batch))
            rows = self.db.query(
                f"SELECT histogram FROM participant_days WHERE pseudonym IN ({marks}) "
                "AND day >= ? AND day <= ? ORDER BY pseudonym, day, dataset_id",
                (*batch, since, until),
            )
            found += [str(r["histogram"]) for r in rows]
        return found

    def _save(self, histograms: Iterator[JsonObject], drop_before: str) -> None:
        labels: set[str] = set()

        def rows() -> Iterator[tuple[Any, Any, Any, str]]:
            for h in histograms:  # one transaction: a failure midway stores none of them
                labels.add(str(h["pseudonym"]))
                text = json.dumps(h, separators=(",", ":"))
                yield h["pseudonym"], h["day"], h["dataset_id"], text

        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO participant_days (pseudonym, day, dataset_id, histogram) "
                "VALUES (?, ?, ?, ?)",
                rows(),
            )
            conn.executemany(
                "DELETE FROM participant_days WHERE pseudonym = ? AND day < ?",
                [(p, drop_before) for p in sorted(labels)],
            )

    def _erase(self, pseudonym: str) -> int:
        with self.db.transaction() as conn:
            cursor = conn.execute("DELETE FROM participant_days WHERE pseudonym = ?", (pseudonym,))
            return int(cursor.rowcount)

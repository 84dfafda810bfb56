"""Analysis summaries and flagged users/episodes in SQLite."""

from __future__ import annotations

import json
import time

from healthpipe.adapters.local.sqlite import Database
from healthpipe.domain.documents import JsonObject
from healthpipe.ports import AnalysisStore


class SqliteAnalysisStore(AnalysisStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    def _save(self, summary: JsonObject, flagged: list[JsonObject]) -> None:
        epoch = summary.get("created_epoch")
        now = float(epoch) if isinstance(epoch, int | float) and epoch else time.time()
        dataset_id = summary["dataset_id"]
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO analyses (dataset_id, created_at, summary) "
                "VALUES (?, ?, ?)",
                (dataset_id, now, json.dumps(summary, default=str)),
            )
            conn.execute("DELETE FROM flagged WHERE dataset_id = ?", (dataset_id,))
            conn.executemany(
                "INSERT INTO flagged (dataset_id, item_key, user_key, kind, created_at, item) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        dataset_id,
                        item["item_key"],
                        item["user_key"],
                        item["kind"],
                        now,
                        json.dumps(item, default=str),
                    )
                    for item in flagged
                ],
            )

    def _get(self, dataset_id: str) -> JsonObject | None:
        rows = self.db.query("SELECT summary FROM analyses WHERE dataset_id = ?", (dataset_id,))
        return json.loads(rows[0]["summary"]) if rows else None

    def _recent(self, limit: int, since_epoch: float | None) -> list[JsonObject]:
        rows = self.db.query(
            "SELECT summary FROM analyses WHERE created_at >= ? ORDER BY created_at DESC LIMIT ?",
            (since_epoch or 0.0, limit),
        )
        return [json.loads(r["summary"]) for r in rows]

    def _flagged_for_user(self, user_key: str) -> list[JsonObject]:
        rows = self.db.query(
            "SELECT item FROM flagged WHERE user_key = ? ORDER BY created_at DESC", (user_key,)
        )
        return [json.loads(r["item"]) for r in rows]

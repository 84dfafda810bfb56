"""Idempotency ledger in SQLite. A claim whose owner process is gone is taken over at once."""

from __future__ import annotations

import json
import time
from typing import Any

from healthpipe.adapters.local.sqlite import Database
from healthpipe.errors import PermanentError
from healthpipe.owners import owner_is_dead
from healthpipe.ports import Ledger, LedgerRecord


class SqliteLedger(Ledger):
    def __init__(self, db: Database, lease_seconds: float = 900.0, owner: str | None = None):
        super().__init__(lease_seconds, owner)
        self.db = db

    def _insert_if_absent(self, record: LedgerRecord) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO ledger (key, status, owner, lease_expires_at, result, "
                "attempts, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.key,
                    record.status,
                    record.owner,
                    record.lease_expires_at,
                    json.dumps(record.result),
                    record.attempts,
                    record.updated_at,
                ),
            )
            return cur.rowcount == 1

    def _replace_if_owner(self, record: LedgerRecord, expected_owner: str) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE ledger SET owner = ?, lease_expires_at = ?, attempts = ?, updated_at = ? "
                "WHERE key = ? AND owner = ? AND status = 'in_progress'",
                (
                    record.owner,
                    record.lease_expires_at,
                    record.attempts,
                    record.updated_at,
                    record.key,
                    expected_owner,
                ),
            )
            return cur.rowcount == 1

    def _get(self, key: str) -> LedgerRecord | None:
        rows = self.db.query("SELECT * FROM ledger WHERE key = ?", (key,))
        if not rows:
            return None
        row = rows[0]
        return LedgerRecord(
            key=row["key"],
            status=row["status"],
            owner=row["owner"],
            lease_expires_at=row["lease_expires_at"],
            result=json.loads(row["result"]),
            attempts=row["attempts"],
            updated_at=row["updated_at"],
        )

    def _complete(self, key: str, owner: str, result: dict[str, Any]) -> None:
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE ledger SET status = 'completed', result = ?, updated_at = ? "
                "WHERE key = ? AND owner = ?",
                (json.dumps(result, default=str), time.time(), key, owner),
            )
            if cur.rowcount != 1:
                raise PermanentError(f"lost the claim on {key} before completing it")

    def _delete_if_owner(self, key: str, owner: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "DELETE FROM ledger WHERE key = ? AND owner = ? AND status = 'in_progress'",
                (key, owner),
            )

    def _owner_is_dead(self, owner: str) -> bool:
        return owner_is_dead(owner)

"""Metrics as rows in SQLite; `healthpipe status` sums them."""

from __future__ import annotations

import time

from healthpipe.adapters.local.sqlite import Database
from healthpipe.ports import MetricPoint, Metrics


class SqliteMetrics(Metrics):
    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db

    def _write(self, points: list[MetricPoint]) -> None:
        now = time.time()
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO metrics (ts, name, value, unit, stage) VALUES (?, ?, ?, ?, ?)",
                [(now, p.name, p.value, p.unit, p.stage) for p in points],
            )

    def _totals(self) -> dict[str, float]:
        rows = self.db.query("SELECT name, sum(value) AS total FROM metrics GROUP BY name")
        return {r["name"]: float(r["total"]) for r in rows}

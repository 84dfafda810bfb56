"""The durable local twin of EventBridge: a transactional outbox in SQLite.

Publishing stores the event and one delivery per matching route, in one transaction.
A dispatcher claims due deliveries with a lease, runs the target, and records the outcome
together with the events the target emitted (again one transaction), so a crash at any
point leaves either the old state or the new one. Failed deliveries are retried with
exponential backoff, then dead-lettered with their last error.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from healthpipe.adapters.local.sqlite import Database
from healthpipe.events import Event
from healthpipe.owners import owner_is_dead
from healthpipe.ports import EventBus

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class Delivery:
    id: int
    event: Event
    route: str
    target: str
    attempts: int


class Route(Protocol):
    """A rule matching an event: its name and the target it delivers to."""

    @property
    def name(self) -> str: ...

    @property
    def target(self) -> str: ...


Router = Callable[[dict[str, Any]], Iterable[Route]]


class SqliteEventBus(EventBus):
    """`routes_for` gives the rules matching an event (EventBridge's rules, as data: bootstrap
    passes `routing.routes_for`), as the bus's rules are configuration on AWS too."""

    def __init__(self, db: Database, routes_for: Router) -> None:
        self.db = db
        self.routes_for = routes_for

    # -- publishing ------------------------------------------------------------------------
    def _publish(self, events: list[Event]) -> None:
        with self.db.transaction() as conn:
            self._insert(conn, events)

    def _insert(self, conn: sqlite3.Connection, events: list[Event]) -> None:
        now = time.time()
        for event in events:
            conn.execute(
                "INSERT OR IGNORE INTO events (id, source, detail_type, detail, time, "
                "correlation_id, dataset_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event.id,
                    event.source,
                    event.detail_type,
                    json.dumps(event.detail, default=str),
                    event.time,
                    event.correlation_id,
                    event.dataset_id,
                    now,
                ),
            )
            for route in self.routes_for(event.to_dict()):
                conn.execute(
                    "INSERT OR IGNORE INTO deliveries (event_id, route, target, status, "
                    "next_attempt_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?)",
                    (event.id, route.name, route.target, now, now),
                )

    # -- dispatching -----------------------------------------------------------------------
    def claim_due(
        self, owner: str, lease_seconds: float, now: float | None = None
    ) -> Delivery | None:
        """Take the oldest due delivery: pending, or running under an expired/dead lease."""
        now = time.time() if now is None else now
        with self.db.transaction() as conn:
            rows = conn.execute(
                # the event's columns by their own names: `e.*` beside `d.id` gave two `id`
                # columns, and the row's "id" (the delivery's) became the event's id
                "SELECT d.id, d.route, d.target, d.attempts, d.status, d.lease_owner, "
                "d.lease_expires_at, e.id AS event_id, e.source, e.detail_type, e.detail, "
                "e.time FROM deliveries d JOIN events e ON e.id = d.event_id "
                "WHERE (d.status = 'pending' AND d.next_attempt_at <= ?) OR d.status = 'running' "
                "ORDER BY d.next_attempt_at, d.id LIMIT 50",
                (now,),
            ).fetchall()
            for row in rows:
                if row["status"] == "running" and not self._lease_lapsed(row, now):
                    continue
                conn.execute(
                    "UPDATE deliveries SET status = 'running', lease_owner = ?, "
                    "lease_expires_at = ?, attempts = attempts + 1, updated_at = ? WHERE id = ?",
                    (owner, now + lease_seconds, now, row["id"]),
                )
                return Delivery(
                    row["id"],
                    _event_from_row(row),
                    row["route"],
                    row["target"],
                    row["attempts"] + 1,
                )
        return None

    @staticmethod
    def _lease_lapsed(row: sqlite3.Row, now: float) -> bool:
        if row["lease_expires_at"] is not None and row["lease_expires_at"] <= now:
            return True
        return owner_is_dead(row["lease_owner"] or "")

    def finish(
        self, delivery: Delivery, outcome: str, result: dict[str, Any], emitted: list[Event]
    ) -> None:
        """Record success and publish what the target emitted, atomically."""
        with self.db.transaction() as conn:
            self._insert(conn, emitted)
            conn.execute(
                "UPDATE deliveries SET status = 'delivered', outcome = ?, result = ?, "
                "last_error = NULL, lease_owner = NULL, updated_at = ? WHERE id = ?",
                (outcome, json.dumps(result, default=str), time.time(), delivery.id),
            )

    def fail(self, delivery: Delivery, error: str, *, retry_in: float | None) -> str:
        """Schedule a retry in `retry_in` seconds, or dead-letter when it is None."""
        status = "pending" if retry_in is not None else "dead"
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE deliveries SET status = ?, next_attempt_at = ?, last_error = ?, "
                "lease_owner = NULL, updated_at = ? WHERE id = ?",
                (
                    status,
                    time.time() + (retry_in or 0.0),
                    error[:MAX_ERROR_CHARS],
                    time.time(),
                    delivery.id,
                ),
            )
        return status

    def interrupt(self, delivery: Delivery) -> None:
        """The delivery was stopped by Ctrl-C: due again at once, the attempt not counted
        (the next run, retry or watch resumes it)."""
        now = time.time()
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, "
                "attempts = max(attempts - 1, 0), last_error = 'interrupted', "
                "lease_owner = NULL, lease_expires_at = NULL, updated_at = ? WHERE id = ?",
                (now, now, delivery.id),
            )

    def next_due_in(self, now: float | None = None) -> float | None:
        """Seconds until the next pending delivery is due (0 if one is due), None if none."""
        now = time.time() if now is None else now
        rows = self.db.query(
            "SELECT min(next_attempt_at) AS due FROM deliveries WHERE status = 'pending'"
        )
        running = self.db.query("SELECT count(*) AS n FROM deliveries WHERE status = 'running'")
        if rows[0]["due"] is None:
            return 1.0 if running[0]["n"] else None
        return max(0.0, float(rows[0]["due"]) - now)

    # -- inspection and redrive ------------------------------------------------------------
    def deliveries_for(self, correlation_id: str, after_id: int = 0) -> list[dict[str, Any]]:
        """Deliveries of the events of one upload (newer than delivery `after_id`)."""
        rows = self.db.query(
            "SELECT d.id, d.route, d.target, d.status, d.attempts, d.outcome, d.result, "
            "d.last_error, e.detail_type, e.dataset_id FROM deliveries d "
            "JOIN events e ON e.id = d.event_id WHERE e.correlation_id = ? AND d.id > ? "
            "ORDER BY d.id",
            (correlation_id, after_id),
        )
        return [{**dict(r), "result": json.loads(r["result"]) if r["result"] else {}} for r in rows]

    def delivery_of(self, event_id: str, target: str) -> dict[str, Any] | None:
        rows = self.db.query(
            "SELECT id, route, target, status, attempts, outcome, result, last_error "
            "FROM deliveries WHERE event_id = ? AND target = ? ORDER BY id DESC LIMIT 1",
            (event_id, target),
        )
        if not rows:
            return None
        row = rows[0]
        return {**dict(row), "result": json.loads(row["result"]) if row["result"] else {}}

    def dead_letters(self) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT d.id, d.route, d.target, d.attempts, d.last_error, d.updated_at, "
            "e.id AS event_id, e.detail_type, e.correlation_id, e.dataset_id "
            "FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.status = 'dead' "
            "ORDER BY d.updated_at"
        )
        return [dict(r) for r in rows]

    def redrive(self, delivery_ids: list[int] | None = None) -> int:
        """Put dead letters back in the queue (all, or the given ids) with fresh attempts."""
        now = time.time()
        with self.db.transaction() as conn:
            if delivery_ids is None:
                cur = conn.execute(
                    "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, "
                    "updated_at = ? WHERE status = 'dead'",
                    (now, now),
                )
            else:
                marks = ",".join("?" for _ in delivery_ids)
                cur = conn.execute(
                    "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, "
                    f"updated_at = ? WHERE status = 'dead' AND id IN ({marks})",
                    (now, now, *delivery_ids),
                )
            return cur.rowcount

    def counts(self) -> dict[str, int]:
        rows = self.db.query("SELECT status, count(*) AS n FROM deliveries GROUP BY status")
        return {r["status"]: int(r["n"]) for r in rows}


def _event_from_row(row: sqlite3.Row) -> Event:
    """The event of a claimed delivery's row (its id under `event_id`)."""
    return Event(
        source=row["source"],
        detail_type=row["detail_type"],
        detail=json.loads(row["detail"]),
        id=row["event_id"],
        time=row["time"],
    )

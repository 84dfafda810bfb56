"""Ledger contract: DynamoDB (moto, over HTTP) and SQLite claim, complete, release, expire alike,
and the claim lifecycle (`stages.base.run_claimed` / `run_once`) behaves alike on both."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import moto_env
import pytest

from healthpipe.adapters.aws.ledger import DynamoLedger
from healthpipe.adapters.local.ledger import SqliteLedger
from healthpipe.adapters.local.sqlite import Database
from healthpipe.bootstrap import build_local
from healthpipe.config import load_settings
from healthpipe.errors import PermanentError, TransientError
from healthpipe.events import Event
from healthpipe.ports import Ledger, MetricPoint, Metrics
from healthpipe.stages.base import ClaimHeldError, StageResult, run_claimed, run_once

LEASE = 60.0
NOW = 1_800_000_000.0
MakeLedger = Callable[[str], Ledger]


@pytest.fixture(params=["local", "aws"])
def make_ledger(request: pytest.FixtureRequest, db: Database) -> MakeLedger:
    """Ledgers of different owners on one shared store."""
    if request.param == "local":
        return lambda owner: SqliteLedger(db, lease_seconds=LEASE, owner=owner)
    aws: dict[str, Any] = request.getfixturevalue("aws")
    table = moto_env.unique("contract-ledger")
    moto_env.create_ledger_table(aws["dynamodb"], table)
    return lambda owner: DynamoLedger(table, aws["dynamodb"], lease_seconds=LEASE, owner=owner)


def test_one_claim_at_a_time(make_ledger: MakeLedger) -> None:
    a, b = make_ledger("worker-a"), make_ledger("worker-b")
    first = a.claim("ingest:abc", now=NOW)
    second = b.claim("ingest:abc", now=NOW + 1)
    assert first.acquired and first.record.owner == "worker-a"
    assert second.outcome == "in_progress" and second.record.owner == "worker-a"


def test_completed_is_final_and_keeps_its_result(make_ledger: MakeLedger) -> None:
    a, b = make_ledger("worker-a"), make_ledger("worker-b")
    a.claim("analyze:d1", now=NOW)
    a.complete("analyze:d1", {"dataset_id": "d1", "anomalies": 3})
    later = b.claim("analyze:d1", now=NOW + 10 * LEASE)  # even long after the lease
    assert later.outcome == "completed"
    assert later.record.result == {"dataset_id": "d1", "anomalies": 3}
    record = b.get("analyze:d1")
    assert record is not None and record.status == "completed"


def test_release_lets_a_retry_claim_at_once(make_ledger: MakeLedger) -> None:
    a, b = make_ledger("worker-a"), make_ledger("worker-b")
    a.claim("notify:d2", now=NOW)
    b.release("notify:d2")  # not b's claim: nothing happens
    assert b.claim("notify:d2", now=NOW + 1).outcome == "in_progress"
    a.release("notify:d2")
    assert a.get("notify:d2") is None
    assert b.claim("notify:d2", now=NOW + 2).acquired


def test_expired_lease_is_taken_over(make_ledger: MakeLedger) -> None:
    # GIVEN worker a crashed holding a claim
    a, b = make_ledger("worker-a"), make_ledger("worker-b")
    a.claim("ingest:crash", now=NOW)
    # WHEN worker b retries after the lease expired
    taken = b.claim("ingest:crash", now=NOW + LEASE + 1)
    # THEN b holds it (second attempt) and a can no longer complete it
    assert taken.acquired and taken.record.attempts == 2
    stored = b.get("ingest:crash")
    assert stored is not None and stored.owner == "worker-b"
    with pytest.raises(PermanentError):
        a.complete("ingest:crash", {})
    b.complete("ingest:crash", {"ok": True})
    assert a.claim("ingest:crash", now=NOW + 3 * LEASE).outcome == "completed"


def test_lease_not_expired_is_not_taken(make_ledger: MakeLedger) -> None:
    a, b = make_ledger("worker-a"), make_ledger("worker-b")
    a.claim("ingest:live", now=NOW)
    assert b.claim("ingest:live", now=NOW + LEASE - 1).outcome == "in_progress"
    assert a.get("ingest:live").owner == "worker-a"  # type: ignore[union-attr]


def test_dynamo_items_carry_ttl_and_status(aws: dict[str, Any]) -> None:
    table = moto_env.unique("contract-ledger-ttl")
    moto_env.create_ledger_table(aws["dynamodb"], table)
    ledger = DynamoLedger(table, aws["dynamodb"], lease_seconds=LEASE, owner="w", retention_days=2)
    ledger.claim("ingest:ttl", now=NOW)
    item = aws["dynamodb"].get_item(TableName=table, Key={"pk": {"S": "ingest:ttl"}})["Item"]
    assert item["status"]["S"] == "in_progress"
    assert int(item["expires_at"]["N"]) == int(NOW + LEASE + 2 * 86400)


def test_a_claim_records_its_now(make_ledger: MakeLedger) -> None:
    # GIVEN an explicit `now` THEN the record says when it was claimed and taken over
    a, b = make_ledger("worker-a"), make_ledger("worker-b")
    a.claim("ingest:when", now=NOW)
    first = b.get("ingest:when")
    assert first is not None and first.updated_at == NOW
    assert first.lease_expires_at == NOW + LEASE
    b.claim("ingest:when", now=NOW + LEASE + 5)
    taken = a.get("ingest:when")
    assert taken is not None and taken.updated_at == NOW + LEASE + 5


# --------------------------------------------------------------------------- claim lifecycle
class RecordingMetrics(Metrics):
    def __init__(self) -> None:
        super().__init__()
        self.points: list[MetricPoint] = []

    def _write(self, points: list[MetricPoint]) -> None:
        self.points.extend(points)


@dataclass(frozen=True)
class Lifecycle:
    """What another worker did to the key first, when we run, and what must follow."""

    before: Callable[[Ledger], object]
    at: float
    fails: bool
    outcome: str | None  # the StageResult outcome; None: the run raises
    runs: bool
    stored_status: str | None
    stored_owner: str | None
    attempts: int = 1


def _nothing(ledger: Ledger) -> None:
    return None


def _completed_by_a(ledger: Ledger) -> None:
    ledger.claim("stage:k", now=NOW)
    ledger.complete("stage:k", {"n": 7, "event": {"dataset_id": "d7"}})


def _claimed_by_a(ledger: Ledger) -> object:
    return ledger.claim("stage:k", now=NOW)


LIFECYCLE = {
    "acquired: work runs and the claim completes with its result": Lifecycle(
        _nothing, NOW, False, "done", True, "completed", "worker-b"
    ),
    "completed: the stored result is replayed, work not run": Lifecycle(
        _completed_by_a, NOW + 10 * LEASE, False, "skipped", False, "completed", "worker-a"
    ),
    "another owner's live claim: in progress, work not run": Lifecycle(
        _claimed_by_a, NOW + LEASE - 1, False, "in_progress", False, "in_progress", "worker-a"
    ),
    "an expired lease is taken over: work runs, second attempt": Lifecycle(
        _claimed_by_a, NOW + LEASE + 1, False, "done", True, "completed", "worker-b", 2
    ),
    "a failure releases the claim and re-raises": Lifecycle(
        _nothing, NOW, True, None, True, None, None
    ),
}


@pytest.mark.parametrize("case", LIFECYCLE.values(), ids=list(LIFECYCLE))
def test_the_claim_lifecycle(make_ledger: MakeLedger, tmp_path: Path, case: Lifecycle) -> None:
    # GIVEN what worker a did first, and worker b's ports on the same store
    a, b = make_ledger("worker-a"), make_ledger("worker-b")
    case.before(a)
    runtime = build_local(load_settings({"workspace": tmp_path / "ws"}))
    metrics = RecordingMetrics()
    ports = replace(runtime.ports, ledger=b, metrics=metrics)
    ran: list[str] = []

    def work() -> StageResult:
        ran.append("work")
        if case.fails:
            raise TransientError("the store went away")
        return StageResult("done", [], {"dataset_id": "d7", "n": 1})

    def run() -> StageResult:
        return run_claimed(
            ports,
            "stage:k",
            "ingest",
            work,
            logger=logging.getLogger("test"),
            context={"dataset_id": "d7"},
            replay=lambda stored: [Event("test", "Replayed", stored["event"])],
            now=case.at,
        )

    # WHEN worker b runs the work under its claim at `at`
    try:
        if case.outcome is None:
            with pytest.raises(TransientError):
                run()
            result = None
        else:
            result = run()
    finally:
        runtime.close()
    # THEN
    assert ran == (["work"] if case.runs else [])
    stored = a.get("stage:k")
    assert (stored.status if stored else None) == case.stored_status
    assert (stored.owner if stored else None) == case.stored_owner
    failures = [p for p in metrics.points if p.name == "StageFailures"]
    assert [(p.stage, p.value) for p in failures] == ([("ingest", 1.0)] if case.fails else [])
    if result is None:
        return
    assert result.outcome == case.outcome
    assert result.info["dataset_id"] == "d7"
    if case.outcome == "done":
        assert stored is not None and stored.result == {"dataset_id": "d7", "n": 1}
        assert stored.attempts == case.attempts
    if case.outcome == "skipped":
        assert result.info["n"] == 7  # the first run's result, not a second one
        assert [e.detail for e in result.events] == [{"dataset_id": "d7"}]
    else:
        assert result.events == []


def test_run_once_raises_while_another_owner_holds_the_claim(make_ledger: MakeLedger) -> None:
    # GIVEN worker a holds a live claim (the alert path's case: no StageResult to return)
    a, b = make_ledger("worker-a"), make_ledger("worker-b")
    a.claim("alert:d8", now=NOW)
    ran: list[int] = []

    def send() -> dict[str, Any]:
        ran.append(1)
        return {"email": "sent-by-b"}

    def same(value: dict[str, Any]) -> dict[str, Any]:
        return value

    # WHEN worker b wants to run the same work THEN it must wait, without running it
    with pytest.raises(ClaimHeldError) as held:
        run_once(b, "alert:d8", send, save=same, replay=same, now=NOW + 1)
    assert held.value.key == "alert:d8" and held.value.record.owner == "worker-a"
    assert ran == []
    # and once a completed it, b gets a's result back, still without running it
    a.complete("alert:d8", {"email": "sent-by-a"})
    assert run_once(b, "alert:d8", send, save=same, replay=same, now=NOW + 2) == {
        "email": "sent-by-a"
    }
    assert ran == []

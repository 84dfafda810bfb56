"""Ledger contract: DynamoDB (moto, over HTTP) and SQLite claim, complete, release, expire alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import moto_env
import pytest

from healthpipe.adapters.aws.ledger import DynamoLedger
from healthpipe.adapters.local.ledger import SqliteLedger
from healthpipe.adapters.local.sqlite import Database
from healthpipe.errors import PermanentError
from healthpipe.ports import Ledger

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

"""EventBus contract: an event published reaches the targets its route names.

AWS: EventBridge (moto over HTTP) with the rules of `healthpipe.routing.ROUTES` and SQS
queues standing in for the Lambda targets. Local: the SQLite outbox stores one delivery per
matching route.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import moto_env
import pytest
from botocore.stub import Stubber

from healthpipe import constants as c
from healthpipe import routing
from healthpipe.adapters.aws.event_bus import EventBridgeBus
from healthpipe.adapters.local.event_bus import SqliteEventBus
from healthpipe.adapters.local.sqlite import Database
from healthpipe.domain.documents.events import EventDetail
from healthpipe.errors import TransientError
from healthpipe.events import Event
from healthpipe.ports import EventBus

Delivered = Callable[[str], list[dict[str, Any]]]  # function -> details delivered to it


@pytest.fixture(params=["local", "aws"])
def bus_and_deliveries(request: pytest.FixtureRequest, db: Database) -> tuple[EventBus, Delivered]:
    if request.param == "local":
        targets = {"analyzer": "analyze", "notifier": "notify", "alerts": "alert"}

        def local(function: str) -> list[dict[str, Any]]:
            rows = db.query(
                "SELECT e.detail FROM deliveries d JOIN events e ON e.id = d.event_id "
                "WHERE d.target = ? ORDER BY d.id",
                (targets[function],),
            )
            return [json.loads(r["detail"]) for r in rows]

        return SqliteEventBus(db, routing.routes_for), local
    aws: dict[str, Any] = request.getfixturevalue("aws")
    stack = moto_env.create_stack(aws, moto_env.unique("contract-bus"))

    def remote(function: str) -> list[dict[str, Any]]:
        return [m["detail"] for m in moto_env.receive(aws["sqs"], stack.queues[function])]

    return EventBridgeBus(stack.bus, aws["events"]), remote


def processed(n: int) -> Event:
    detail = EventDetail(
        correlation_id=f"b/raw/{n}.csv@v", dataset_id=f"ds{n:04d}", status="success"
    ).as_json()
    return Event(c.SOURCE_INGESTOR, c.PROCESSING_COMPLETE, detail)


def test_publish_reaches_the_routed_target(bus_and_deliveries: tuple[EventBus, Delivered]) -> None:
    bus, delivered = bus_and_deliveries
    # GIVEN 12 processing events (more than one PutEvents batch) and one failure event
    failed = Event(
        c.SOURCE_INGESTOR,
        c.PROCESSING_FAILED,
        EventDetail(correlation_id="b/raw/x.csv@v", dataset_id="bad", status="rejected").as_json(),
    )
    # WHEN they are published
    bus.publish_many([processed(n) for n in range(12)])
    bus.publish(failed)
    bus.publish_many([])
    # THEN the analyzer got each processing event once, the alert target the failure
    to_analyzer = delivered("analyzer")
    assert sorted(d["dataset_id"] for d in to_analyzer) == [f"ds{n:04d}" for n in range(12)]
    assert all(d["schema_version"] == c.SCHEMA_VERSION for d in to_analyzer)
    assert [d["dataset_id"] for d in delivered("alerts")] == ["bad"]
    assert delivered("notifier") == []


def stubbed_bus(aws: dict[str, Any]) -> tuple[EventBridgeBus, Stubber]:
    client = aws["events"]
    return EventBridgeBus("any-bus", client, sleep=lambda _: None), Stubber(client)


def test_failed_entries_are_retried_alone(aws: dict[str, Any]) -> None:
    bus, stub = stubbed_bus(aws)
    events = [processed(1), processed(2)]
    entries = [bus.entry(e) for e in events]
    # GIVEN EventBridge rejects the second entry once
    stub.add_response(
        "put_events",
        {
            "FailedEntryCount": 1,
            "Entries": [
                {"EventId": "1"},
                {"ErrorCode": "ThrottlingException", "ErrorMessage": "x"},
            ],
        },
        {"Entries": entries},
    )
    # THEN only that entry is sent again
    stub.add_response(
        "put_events",
        {"FailedEntryCount": 0, "Entries": [{"EventId": "2"}]},
        {"Entries": entries[1:]},
    )
    with stub:
        bus.publish_many(events)
        stub.assert_no_pending_responses()


def test_entries_that_stay_failed_raise(aws: dict[str, Any]) -> None:
    bus, stub = stubbed_bus(aws)
    event = processed(3)
    for _ in range(bus.attempts):
        stub.add_response(
            "put_events",
            {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"}],
            },
            {"Entries": [bus.entry(event)]},
        )
    with stub, pytest.raises(TransientError, match="InternalFailure"):
        bus.publish(event)


def test_entries_have_the_eventbridge_shape(aws: dict[str, Any]) -> None:
    bus = EventBridgeBus("healthpipe-bus", aws["events"])
    entry = bus.entry(processed(4))
    assert entry["EventBusName"] == "healthpipe-bus"
    assert entry["Source"] == c.SOURCE_INGESTOR
    assert entry["DetailType"] == c.PROCESSING_COMPLETE
    assert json.loads(entry["Detail"])["dataset_id"] == "ds0004"

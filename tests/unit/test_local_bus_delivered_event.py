"""The local bus hands each delivery the event that was published, its own id included.

Its claim query joined deliveries to events and read both tables' `id` columns under one name:
the delivered event's `id` was the delivery's row number, not the published event's id."""

from __future__ import annotations

import time

from healthpipe.bootstrap import LocalRuntime
from healthpipe.events import Event


def test_a_claimed_delivery_carries_the_published_event(runtime: LocalRuntime) -> None:
    published = [
        Event("health.data.scheduler", "Digest Requested", {"n": n, "correlation_id": f"c{n}"})
        for n in range(2)
    ]
    runtime.bus.publish_many(published)
    now = time.time()
    delivered = [runtime.bus.claim_due("me", lease_seconds=60, now=now) for _ in published]
    events = [d.event for d in delivered if d is not None]
    assert sorted(e.to_dict()["id"] for e in events) == sorted(e.id for e in published)
    assert sorted((e.id, e.detail_type, e.detail["n"], e.time) for e in events) == sorted(
        (e.id, e.detail_type, e.detail["n"], e.time) for e in published
    )

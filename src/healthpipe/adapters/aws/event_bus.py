"""Pipeline events to an EventBridge bus: batches of 10, failed entries retried, then raised;
or, for a function that publishes nothing, no bus at all (`NoEventBus`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from healthpipe.adapters.aws.clients import translate
from healthpipe.errors import PermanentError, TransientError
from healthpipe.events import Event
from healthpipe.ports import EventBus

IAM_ACTIONS: tuple[str, ...] = ("events:PutEvents",)

BATCH = 10  # PutEvents accepts at most 10 entries per call


class EventBridgeBus(EventBus):
    def __init__(
        self,
        bus_name: str,
        client: Any,
        *,
        attempts: int = 4,
        backoff_seconds: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bus_name = bus_name
        self.client = client
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep

    def entry(self, event: Event) -> dict[str, Any]:
        return {
            "EventBusName": self.bus_name,
            "Source": event.source,
            "DetailType": event.detail_type,
            "Detail": json.dumps(event.detail, default=str),
        }

    def _publish(self, events: list[Event]) -> None:
        entries = [self.entry(event) for event in events]
        for start in range(0, len(entries), BATCH):
            self._put_batch(entries[start : start + BATCH])

    def _put_batch(self, entries: list[dict[str, Any]]) -> None:
        pending = entries
        errors: list[str] = []
        for attempt in range(self.attempts):
            try:
                response = self.client.put_events(Entries=pending)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, f"put_events to {self.bus_name}") from exc
            if not response.get("FailedEntryCount"):
                return
            results = response.get("Entries", [])
            failed = [
                (entry, result)
                for entry, result in zip(pending, results, strict=True)
                if result.get("ErrorCode")
            ]
            pending = [entry for entry, _ in failed]
            errors = [f"{r.get('ErrorCode')}: {r.get('ErrorMessage', '')}" for _, r in failed]
            if attempt + 1 < self.attempts:
                self.sleep(self.backoff_seconds * 2**attempt)
        raise TransientError(
            f"{len(pending)} event(s) not accepted by {self.bus_name} after "
            f"{self.attempts} attempts: {'; '.join(sorted(set(errors)))}"
        )


class NoEventBus(EventBus):
    """The bus of a function whose adapters have no `event_bus` (so its role has no
    `events:PutEvents`): no client is built for it. Publishing nothing is fine (the
    runtime publishes each result's events, none here); an event to publish is a wiring
    mistake, refused before any call."""

    def __init__(self, function: str) -> None:
        self.function = function

    def _publish(self, events: list[Event]) -> None:
        raise PermanentError(
            f"{self.function} publishes no events (no event_bus adapter, no events:PutEvents): "
            f"{len(events)} event(s) not sent"
        )

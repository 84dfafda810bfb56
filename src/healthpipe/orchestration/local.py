"""Drives the local pipeline: claims due deliveries from the SQLite outbox and runs the
target stage, with retries (exponential backoff) and dead letters, like EventBridge + SQS."""

from __future__ import annotations

import importlib
import logging
import random
import time
from collections.abc import Callable

from healthpipe import interrupts, routing
from healthpipe.adapters.local.event_bus import Delivery, SqliteEventBus
from healthpipe.errors import PermanentError
from healthpipe.events import Event
from healthpipe.owners import default_owner
from healthpipe.stages.base import Ports, StageResult, log_event

Handler = Callable[[Event, Ports], StageResult]
logger = logging.getLogger("healthpipe.dispatch")


def record_failure(event: Event, ports: Ports) -> StageResult:
    """Failure events: on AWS they go to the SNS alert topic; here they are logged."""
    logger.warning(
        "pipeline failure",
        extra={
            "fields": {
                "detail_type": event.detail_type,
                "dataset_id": event.dataset_id,
                "correlation_id": event.correlation_id,
                "error": event.detail.get("error_code"),
            }
        },
    )
    return StageResult("done")


def stage_handler(path: str) -> Handler:
    """`module:function` of `routing.STAGE_FUNCTIONS` → the stage function."""
    module, _, name = path.partition(":")
    handler: Handler = getattr(importlib.import_module(module), name)
    return handler


def default_handlers() -> dict[str, Handler]:
    """Every stage of `routing.STAGE_FUNCTIONS`, and the local alert path."""
    stages = {target: stage_handler(path) for target, path in routing.STAGE_FUNCTIONS.items()}
    return {**stages, routing.ALERT: record_failure}


class Dispatcher:
    def __init__(
        self,
        ports: Ports,
        bus: SqliteEventBus,
        handlers: dict[str, Handler] | None = None,
        *,
        lease_seconds: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ports = ports
        self.bus = bus
        self.handlers = handlers if handlers is not None else default_handlers()
        self.owner = default_owner()
        self.lease_seconds = lease_seconds or ports.delivery_settings.lease_seconds
        self.sleep = sleep

    def submit(self, event: Event) -> None:
        self.bus.publish(event)

    def drain(
        self, *, max_wait_seconds: float = 60.0, on_step: Callable[[Delivery], None] | None = None
    ) -> int:
        """Run deliveries until none is pending (waiting out backoffs up to max_wait_seconds).
        Ctrl-C stops it: the delivery in hand is due again at once, its attempt not counted,
        and KeyboardInterrupt propagates."""
        with interrupts.noticed():
            return self._drain(max_wait_seconds, on_step)

    def _drain(self, max_wait_seconds: float, on_step: Callable[[Delivery], None] | None) -> int:
        done = 0
        while True:
            delivery = self.bus.claim_due(self.owner, self.lease_seconds)
            if delivery is None:
                wait = self.bus.next_due_in()
                if wait is None or wait > max_wait_seconds:
                    return done
                self.sleep(min(wait, 1.0) if wait > 0 else 0.05)
                continue
            self.run(delivery)
            done += 1
            if on_step is not None:
                on_step(delivery)

    def run(self, delivery: Delivery) -> None:
        handler = self.handlers.get(delivery.target)
        if handler is None:
            self.bus.finish(
                delivery, "ignored", {"reason": f"no handler for {delivery.target}"}, []
            )
            return
        try:
            result = handler(delivery.event, self.ports)
        except KeyboardInterrupt:
            self.bus.interrupt(delivery)
            raise
        except Exception as exc:
            if interrupts.interrupted(exc):
                self.bus.interrupt(delivery)
                raise KeyboardInterrupt from exc
            self._failed(delivery, exc)
            return
        try:
            self.bus.finish(delivery, result.outcome, result.info, result.events)
        except Exception as exc:
            # The stage's work is done and recorded in its ledger claim; a retry replays its
            # completion event. Without this the delivery would stay `running` under our live
            # lease, and nothing would retry it until the lease ran out.
            self._failed(delivery, exc)

    def _failed(self, delivery: Delivery, exc: Exception) -> None:
        settings = self.ports.delivery_settings
        permanent = isinstance(exc, PermanentError)
        error = f"{type(exc).__name__}: {exc}"
        retry_in = None
        if not permanent and delivery.attempts < settings.max_attempts:
            base = settings.retry_base_seconds * 2 ** (delivery.attempts - 1)
            retry_in = base * (0.5 + random.random() / 2)
        status = self.bus.fail(delivery, error, retry_in=retry_in)
        log_event(
            logger,
            "delivery failed",
            target=delivery.target,
            attempt=delivery.attempts,
            status=status,
            error_type=type(exc).__name__,
            dataset_id=delivery.event.dataset_id,
        )
        if status == "dead":
            logger.error(
                "dead-lettered",
                extra={
                    "fields": {
                        "target": delivery.target,
                        "delivery_id": delivery.id,
                        "dataset_id": delivery.event.dataset_id,
                        "error": error[:300],
                    }
                },
            )

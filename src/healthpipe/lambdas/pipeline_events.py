"""Parsing EventBridge pipeline events against the routes a function serves."""

from __future__ import annotations

from typing import Any

from healthpipe import routing
from healthpipe.lambdas.runtime import UnroutableEventError, Work


def parse_for(function: str, targets: set[str], raw: dict[str, Any]) -> list[Work]:
    """One `Work` per route of this function that the event matches (raises if none).

    The event models (pydantic) are imported here, on the first invocation, not when
    Lambda's init phase imports the handler."""
    from healthpipe.lambdas.event_models import EventBridgeEnvelope

    event = EventBridgeEnvelope.model_validate(raw).to_event()
    matched = [r.target for r in routing.routes_for(event.to_dict()) if r.target in targets]
    if not matched:
        raise UnroutableEventError(
            f"{function} has no route for {event.source} / {event.detail_type}"
        )
    return [Work(target, event) for target in matched]

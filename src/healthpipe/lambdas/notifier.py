"""Lambda `notifier`: `Data Analysis Complete` → notify; the scheduled digest → digest."""

from __future__ import annotations

from typing import Any

from healthpipe import routing
from healthpipe.lambdas.pipeline_events import parse_for
from healthpipe.lambdas.runtime import LambdaFunction, Work

STAGES = routing.stages_for(routing.NOTIFY, routing.DIGEST)


def parse(raw: dict[str, Any]) -> list[Work]:
    return parse_for("notifier", set(STAGES), raw)


# The notifier publishes nothing (its role has no events:PutEvents): a permanent failure
# ends the invocation with an ERROR log line and the StageFailures metric.
_function = LambdaFunction("notifier", STAGES, parse)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _function(event, context)

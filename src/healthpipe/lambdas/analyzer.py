"""Lambda `analyzer`: `Data Processing Complete` → analyze."""

from __future__ import annotations

import json
from typing import Any

from healthpipe import constants as c
from healthpipe import routing
from healthpipe.lambdas.pipeline_events import parse_for
from healthpipe.lambdas.runtime import LambdaFunction, UnroutableEventError, Work

STAGES = routing.stages_for(routing.ANALYZE)


def parse(raw: dict[str, Any]) -> list[Work]:
    """An EventBridge event, or SQS records whose bodies are EventBridge events (the analyze
    rule targets the `<prefix>-analyze-queue` queue, polled by the analyzer)."""
    records = raw.get("Records")
    if isinstance(records, list) and records:
        if not all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records):
            raise UnroutableEventError("analyzer: Records that are not SQS messages")
        work: list[Work] = []
        for record in records:
            body = json.loads(str(record.get("body") or "null"))
            if not isinstance(body, dict):
                raise UnroutableEventError("analyzer: an SQS message body is not an event")
            work.extend(parse_for("analyzer", set(STAGES), body))
        return work
    return parse_for("analyzer", set(STAGES), raw)


_function = LambdaFunction(
    "analyzer", STAGES, parse, failure=(c.SOURCE_ANALYZER, c.ANALYSIS_FAILED)
)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _function(event, context)

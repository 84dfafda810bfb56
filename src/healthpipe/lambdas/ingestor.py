"""Lambda `ingestor`: S3 "Object Created" (EventBridge) or S3 notification records → ingest."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from healthpipe import constants as c
from healthpipe import routing
from healthpipe.domain.identity import correlation_id_for, is_ingestible
from healthpipe.events import Event, object_of
from healthpipe.lambdas.capacity import capacity_now
from healthpipe.lambdas.runtime import LambdaFunction, UnroutableEventError, Work

log = logging.getLogger("healthpipe.lambda")


def parse(raw: dict[str, Any]) -> list[Work]:
    # The event models (pydantic) load on the first invocation, not in Lambda's init phase.
    from healthpipe.lambdas.event_models import (
        EventBridgeEnvelope,
        S3Notification,
        is_s3_notification,
    )

    if is_s3_notification(raw):
        events = [
            record.to_event()
            for record in S3Notification.model_validate(raw).Records
            if record.eventSource == "aws:s3"
            and (not record.eventName or record.eventName.startswith("ObjectCreated"))
        ]
    else:
        envelope = EventBridgeEnvelope.model_validate(raw)
        if envelope.source != "aws.s3":
            raise UnroutableEventError(f"ingestor cannot handle events from {envelope.source}")
        events = [envelope.to_s3_event()]
    work = []
    for event in events:
        _, key, _ = object_of(event)
        if is_ingestible(key):
            work.append(Work(routing.INGEST, event))
        else:
            log.info(
                "ignored object outside raw/ or not .csv/.csv.gz", extra={"fields": {"key": key}}
            )
    return work


def upload_correlation_id(event: Event) -> str | None:
    """`<bucket>/<key>@<versionId>`, as the stage will log it (known when S3 gave a version)."""
    bucket, key, version = object_of(event)
    return correlation_id_for(bucket, key, version) if version else None


def too_large(item: Work, workdir: Path, context: Any) -> str | None:
    """Why the object is refused before its download (its size, from the event, exceeds
    what this function's /tmp, memory and remaining time can take), or None."""
    _, key, _ = object_of(item.event)
    size = item.event.detail.get("object", {}).get("size")
    return capacity_now(workdir, context).refusal(key, int(size) if size is not None else None)


_function = LambdaFunction(
    "ingestor",
    routing.stages_for(routing.INGEST),
    parse,
    correlation_of=upload_correlation_id,
    failure=(c.SOURCE_INGESTOR, c.PROCESSING_FAILED),
    admit=too_large,
)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _function(event, context)

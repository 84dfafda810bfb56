"""Lambda `ingestor`: S3 "Object Created" (EventBridge) or S3 notification records → ingest."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from healthpipe import constants as c
from healthpipe import routing
from healthpipe.domain.identity import correlation_id_for, is_ingestible
from healthpipe.events import Event, object_of
from healthpipe.lambdas.capacity import MB, capacity_now
from healthpipe.lambdas.runtime import LambdaFunction, UnroutableEventError, Work

if TYPE_CHECKING:
    from healthpipe.config import Settings

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
    thresholds: tuple[int, int] | None = None
    for event in events:
        _, key, _ = object_of(event)
        if not key.startswith(c.RAW_PREFIX):
            log.info("ignored object outside raw/", extra={"fields": {"key": key}})
            continue
        size = event.detail.get("object", {}).get("size")
        thresholds = thresholds or chunked_thresholds(_function.settings())
        if routing.taken_by_chunked_rule(key, _int_or_none(size), *thresholds):
            log.info(
                "left to the chunked ingest (its rule takes this upload)",
                extra={"fields": {"key": key, "size": size}},
            )
            continue
        # every other upload under raw/ is ingested, or rejected with a failure record
        work.append(Work(routing.INGEST, event))
    return work


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def chunked_thresholds(settings: Settings) -> tuple[int, int]:
    """(plain, gzip) thresholds in bytes of the large-upload rule, as infra/terraform/events.tf
    computes them from the same settings (`chunked_threshold_mb`, `chunked_gzip_ratio`): the
    function's own, read once per execution environment."""
    threshold = settings.chunked_threshold_mb * MB
    return threshold, math.floor(threshold / settings.chunked_gzip_ratio)


def upload_correlation_id(event: Event) -> str | None:
    """`<bucket>/<key>@<versionId>`, as the stage will log it (known when S3 gave a version)."""
    bucket, key, version = object_of(event)
    return correlation_id_for(bucket, key, version) if version else None


def too_large(item: Work, workdir: Path, context: Any) -> str | None:
    """Why the object is refused before its download (its size, from the event, exceeds
    what this function's /tmp, memory and remaining time can take), or None."""
    _, key, _ = object_of(item.event)
    size = _int_or_none(item.event.detail.get("object", {}).get("size"))
    if size is not None and size > routing.NUMERIC_LIMIT and is_ingestible(key):
        return (
            f"upload too large to route ({size / 1e9:.1f} GB): EventBridge compares sizes up to "
            f"{routing.NUMERIC_LIMIT / 1e9:.0f} GB only, so the chunked ingest is not started "
            "for it; split it into files under 5 GB (docs/deploy.md, Large files)"
        )
    return capacity_now(workdir, context).refusal(key, size)


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

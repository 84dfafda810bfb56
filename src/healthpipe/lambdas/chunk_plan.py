"""Lambda `chunk_plan`: the state machine's first state. Input: `PlanRequest` (the S3 Object
Created event, the execution id, the chunk size in bytes, Reduce's hash buckets); result: the
`ChunkJob`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from healthpipe.events import Event
from healthpipe.lambdas.steps import StepTask

if TYPE_CHECKING:
    from healthpipe.stages.base import Ports


def run(
    step: Callable[..., Any], raw: dict[str, Any], ports: Ports
) -> tuple[dict[str, Any], list[Event]]:
    from healthpipe.domain.documents.chunk_job import PlanRequest
    from healthpipe.lambdas.event_models import EventBridgeEnvelope

    request = PlanRequest.model_validate(raw)
    event = EventBridgeEnvelope.model_validate(request.event).to_s3_event()
    result = step(event, request.execution, request.chunk_bytes, ports, buckets=request.buckets)
    return result.info["job"].as_json(), result.events


_function = StepTask("chunk_plan", "healthpipe.stages.chunked:plan", run)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _function(event, context)

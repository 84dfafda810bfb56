"""Lambda `analyze_prepare`: the grouped-analysis state machine's first state. Input:
`AnalyzeRequest` (the Data Processing Complete event, the execution id, the most readings of
a group); result: the `AnalyzeJob`. Publishes a finished analysis's event again when the
file was analysed before."""

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
    from healthpipe.domain.documents import ProcessingComplete
    from healthpipe.domain.documents.analyze_job import AnalyzeRequest
    from healthpipe.lambdas.event_models import EventBridgeEnvelope

    request = AnalyzeRequest.model_validate(raw)
    event = EventBridgeEnvelope.model_validate(request.event).to_event()
    detail = ProcessingComplete.model_validate(event.detail)
    result = step(detail, request.execution, request.group_rows, ports)
    return result.info["job"].as_json(), result.events


_function = StepTask("analyze_prepare", "healthpipe.stages.grouped_analyze:prepare", run)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _function(event, context)

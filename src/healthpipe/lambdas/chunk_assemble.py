"""Lambda `chunk_assemble`: the state machine's last state. Input: `JobStep`; result:
`Assembled`; publishes Data Processing Complete (the analyzer follows as for any file)."""

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
    from healthpipe.domain.documents.chunk_job import JobStep

    result = step(JobStep.model_validate(raw), ports)
    return result.info["assembled"].as_json(), result.events


_function = StepTask("chunk_assemble", "healthpipe.stages.chunked:assemble", run)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _function(event, context)

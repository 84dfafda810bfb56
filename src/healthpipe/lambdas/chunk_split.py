"""Lambda `chunk_split`: one item of the state machine's second Distributed Map. Input:
`ChunkStep` (the job and one chunk of its plan); result: the chunk's `ChunkSplit` (its
parts of the three outputs are in work/)."""

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
    from healthpipe.domain.documents.chunk_job import ChunkStep

    return step(ChunkStep.model_validate(raw), ports).as_json(), []


_function = StepTask("chunk_split", "healthpipe.stages.chunked:split", run)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _function(event, context)

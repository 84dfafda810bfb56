"""Lambda `chunk_release`: the state machine's failure branch, before Data Processing Failed.
Input: `ReleaseRequest` (the job and the failed execution's id); result: `Released`. Gives up
the execution's ledger claim on the upload (and no other owner's), so the same bytes can be
uploaded again at once. Its role reaches the ledger table only."""

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
    from healthpipe.domain.documents.chunk_job import ReleaseRequest

    return step(ReleaseRequest.model_validate(raw), ports).as_json(), []


_function = StepTask("chunk_release", "healthpipe.stages.chunked:release", run)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _function(event, context)

"""Lambda `chunk_reduce`: the repeats across chunks, between the two Distributed Maps: the
items of the Map over the hash buckets (input: `ReduceStep` with its bucket; result:
`BucketRepeats`), then the row offsets (input: `ReduceStep` without a bucket; result:
`RowOffsets`, the parsed records before each chunk)."""

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
    from healthpipe.domain.documents.chunk_job import ReduceStep

    return step(ReduceStep.model_validate(raw), ports).as_json(), []


_function = StepTask("chunk_reduce", "healthpipe.stages.chunked:reduce", run)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _function(event, context)

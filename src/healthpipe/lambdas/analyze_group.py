"""Lambda `analyze_group`: one item of the grouped-analysis state machine's Distributed Map.
Input: `GroupStep` (the job and one group of participants); result: the group's
`GroupAnalyzed` without its severity facts (its files and full result are in work/)."""

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
    from healthpipe.domain.documents.analyze_job import GroupStep

    return step(GroupStep.model_validate(raw), ports).as_json(), []


_function = StepTask("analyze_group", "healthpipe.stages.grouped_analyze:group", run)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _function(event, context)

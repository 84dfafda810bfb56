"""Lambda `analyze_merge`: the grouped-analysis state machine's last state. Input:
`AnalyzeStep`; result: `Merged`; publishes Data Analysis Complete (the notifier follows as
for any file)."""

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
    from healthpipe.domain.documents.analyze_job import AnalyzeStep

    result = step(AnalyzeStep.model_validate(raw), ports)
    return result.info["merged"].as_json(), result.events


_function = StepTask("analyze_merge", "healthpipe.stages.grouped_merge:merge", run)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _function(event, context)

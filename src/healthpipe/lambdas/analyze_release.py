"""Lambda `analyze_release`: the grouped-analysis state machine's failure branch, before Data
Analysis Failed. Input: `AnalyzeReleaseRequest` (the job and the failed execution's id);
result: `AnalyzeReleased`. Gives up the execution's ledger claim on the analysis (and no
other owner's). Its role reaches the ledger table only."""

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
    from healthpipe.domain.documents.analyze_job import AnalyzeReleaseRequest

    return step(AnalyzeReleaseRequest.model_validate(raw), ports).as_json(), []


_function = StepTask("analyze_release", "healthpipe.stages.grouped_analyze:release", run)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _function(event, context)

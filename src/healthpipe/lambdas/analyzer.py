"""Lambda `analyzer`: `Data Processing Complete` → analyze."""

from __future__ import annotations

from typing import Any

from healthpipe import constants as c
from healthpipe import routing
from healthpipe.lambdas.pipeline_events import parse_for
from healthpipe.lambdas.runtime import LambdaFunction, Work

STAGES = {routing.ANALYZE: "healthpipe.stages.analyze:analyze"}


def parse(raw: dict[str, Any]) -> list[Work]:
    return parse_for("analyzer", set(STAGES), raw)


_function = LambdaFunction(
    "analyzer", STAGES, parse, failure=(c.SOURCE_ANALYZER, c.ANALYSIS_FAILED)
)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _function(event, context)

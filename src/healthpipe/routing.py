"""Event routes: which stage receives which event. The same patterns are written into the
Terraform EventBridge rules (a cross-check test holds them together).

`matches` implements the subset of EventBridge pattern syntax these routes use: lists of
exact values, `{"prefix": …}`, `{"suffix": …}` and nested objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from healthpipe import constants as c


@dataclass(frozen=True)
class Route:
    name: str
    target: str
    pattern: dict[str, Any]


INGEST, ANALYZE, NOTIFY, DIGEST, ALERT = "ingest", "analyze", "notify", "digest", "alert"

# The one stage registry: each route target's stage function as "module:function", looked
# up by the local dispatcher and by each Lambda function (imported on first use). ALERT has
# no stage: each runtime handles failure events itself (SNS on AWS, a log line locally).
STAGE_FUNCTIONS: dict[str, str] = {
    INGEST: "healthpipe.stages.ingest:ingest",
    ANALYZE: "healthpipe.stages.analyze:analyze",
    NOTIFY: "healthpipe.stages.notify:notify",
    DIGEST: "healthpipe.stages.digest:digest",
}


def stages_for(*targets: str) -> dict[str, str]:
    """The `STAGE_FUNCTIONS` entries of `targets` (what one Lambda function runs)."""
    return {target: STAGE_FUNCTIONS[target] for target in targets}


ROUTES: tuple[Route, ...] = (
    Route(
        "raw-object-created",
        INGEST,
        {
            "source": ["aws.s3"],
            "detail-type": [c.OBJECT_CREATED],
            "detail": {
                "object": {
                    "key": [
                        {"wildcard": "raw/*.csv"},
                        {"wildcard": "raw/*.csv.gz"},
                        {"wildcard": "raw/*.CSV"},
                        {"wildcard": "raw/*.CSV.GZ"},
                    ]
                }
            },
        },
    ),
    Route(
        "processing-complete",
        ANALYZE,
        {
            "source": [c.SOURCE_INGESTOR],
            "detail-type": [c.PROCESSING_COMPLETE],
            "detail": {"status": ["success"]},
        },
    ),
    Route(
        "analysis-complete",
        NOTIFY,
        {"source": [c.SOURCE_ANALYZER], "detail-type": [c.ANALYSIS_COMPLETE]},
    ),
    Route(
        "digest-requested",
        DIGEST,
        {"source": [c.SOURCE_SCHEDULER], "detail-type": [c.DIGEST_REQUESTED]},
    ),
    Route(
        "pipeline-failed",
        ALERT,
        {
            "source": [c.SOURCE_INGESTOR, c.SOURCE_ANALYZER, c.SOURCE_NOTIFIER],
            "detail-type": [c.PROCESSING_FAILED, c.ANALYSIS_FAILED],
        },
    ),
)


def _wildcard(pattern: str, value: str) -> bool:
    parts = pattern.split("*")
    if len(parts) == 1:
        return pattern == value
    if not value.startswith(parts[0]) or not value.endswith(parts[-1]):
        return False
    pos = len(parts[0])
    end = len(value) - len(parts[-1])
    for middle in parts[1:-1]:
        found = value.find(middle, pos, end)
        if found < 0:
            return False
        pos = found + len(middle)
    return pos <= end


def _value_matches(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        if not isinstance(value, str):
            return False
        if "prefix" in rule:
            return value.startswith(rule["prefix"])
        if "suffix" in rule:
            return value.endswith(rule["suffix"])
        if "wildcard" in rule:
            return _wildcard(rule["wildcard"], value)
        raise ValueError(f"unsupported pattern operator: {sorted(rule)}")
    return bool(rule == value)


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    for field, rule in pattern.items():
        if field not in event:
            return False
        value = event[field]
        if isinstance(rule, dict):
            if not isinstance(value, dict) or not matches(rule, value):
                return False
        elif not any(_value_matches(option, value) for option in rule):
            return False
    return True


def routes_for(event: dict[str, Any]) -> list[Route]:
    return [route for route in ROUTES if matches(route.pattern, event)]

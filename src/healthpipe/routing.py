"""Event routes: which stage receives which event. The same patterns are written into the
Terraform EventBridge rules (a cross-check test holds them together).

`matches` implements the subset of EventBridge pattern syntax these routes use: lists of
exact values, `{"prefix": …}`, `{"suffix": …}` (either also as
`{"equals-ignore-case": …}`), `{"equals-ignore-case": …}`, `{"wildcard": …}` and nested
objects.

Every object created under `raw/` is the ingest route's, whatever its name: ingest takes the
supported kinds (`.csv`, `.csv.gz`, any case) and rejects any other with a failure record
(`unsupported file type: <suffix>`), so no upload goes unrecorded. On AWS the large uploads
of the supported kinds are the chunked-ingest state machine's (infra/terraform/events.tf);
`taken_by_chunked_rule` is that rule's decision, which the ingestor leaves to it.
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
            "detail": {"object": {"key": [{"prefix": c.RAW_PREFIX}]}},
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


def _text(operand: Any, value: str) -> tuple[str, str]:
    """(operand, value) to compare: both lower-cased for `{"equals-ignore-case": …}`."""
    if isinstance(operand, dict):
        if set(operand) != {"equals-ignore-case"}:
            raise ValueError(f"unsupported pattern operand: {sorted(operand)}")
        return str(operand["equals-ignore-case"]).lower(), value.lower()
    return str(operand), value


def _value_matches(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        if not isinstance(value, str):
            return False
        if "prefix" in rule:
            prefix, text = _text(rule["prefix"], value)
            return text.startswith(prefix)
        if "suffix" in rule:
            suffix, text = _text(rule["suffix"], value)
            return text.endswith(suffix)
        if "equals-ignore-case" in rule:
            expected, text = _text(rule, value)
            return text == expected
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


# EventBridge compares numbers between -5.0e9 and +5.0e9 only (its matching engine, Event
# Ruler: "Numeric matching is limited to value between -5.0e9 and +5.0e9 inclusive"; the
# limit was 1.0e9 before). A larger `detail.object.size` matches no numeric pattern, neither
# `<` nor `>=`: such an upload is the ingestor's (its rule has no size), which refuses it.
NUMERIC_LIMIT = 5_000_000_000


def taken_by_chunked_rule(
    key: str, size: int | None, threshold_bytes: int, gzip_threshold_bytes: int
) -> bool:
    """Whether the large-upload rule (infra/terraform/events.tf `chunked_pattern`) starts the
    chunked-ingest state machine for this upload: a key under `raw/` ending in `.csv`, at or
    above `threshold_bytes`, or in `.gz`, at or above `gzip_threshold_bytes` (any case), of a
    size EventBridge can compare."""
    if size is None or not key.startswith(c.RAW_PREFIX) or size > NUMERIC_LIMIT:
        return False
    lowered = key.lower()
    if lowered.endswith(".gz"):
        return size >= gzip_threshold_bytes
    return lowered.endswith(".csv") and size >= threshold_bytes

"""Why an LLM analyst failed, as the guarded analyst needs to know it.

HealthpipeError
└── AdapterError
    └── AnalystError            an LLM call gave no usable InsightSet; carries
                                `reason` (a code below), `retryable`, and the `usage`
                                the failed call still cost

Reason codes: throttled, timeout, unavailable, server_error (retryable: throttled,
server_error); no_credentials, access_denied, model_not_found, bad_request, refused,
truncated; malformed_output, schema_invalid, ungrounded (retryable once: a model's output
can differ on a second try); unexpected_error (a bug: never retried).
Adapters translate their library's errors into these at the boundary.
"""

from __future__ import annotations

from typing import Any

from healthpipe.domain.insights import Usage
from healthpipe.errors import AdapterError

RETRYABLE = frozenset(
    {"throttled", "server_error", "malformed_output", "schema_invalid", "ungrounded"}
)
MAX_DETAIL_CHARS = 300


class AnalystError(AdapterError):
    def __init__(
        self,
        reason: str,
        detail: str,
        *,
        retryable: bool | None = None,
        usage: Usage | None = None,
        retry_after: float | None = None,
        grounding: dict[str, Any] | None = None,
    ) -> None:
        detail = " ".join(detail.split())[:MAX_DETAIL_CHARS]
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retryable = reason in RETRYABLE if retryable is None else retryable
        self.usage = usage or Usage()
        self.retry_after = retry_after  # seconds the provider asked us to wait, if it did
        self.grounding = grounding  # the grounding record, when the output was ungrounded

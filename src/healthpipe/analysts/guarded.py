"""The failure policy around an LLM analyst: one retry where it makes sense, then builtin.

Throttling, server errors, malformed or schema-invalid output and ungrounded output are
retried once (the provider's own backoff comes first: botocore retries throttling itself);
a retry after a rejected answer tells the model why it was rejected (at temperature 0 the
same prompt would likely give the same answer).
Timeouts, missing credentials, access denied, unknown models, bad requests, refusals and
truncated output are not: a second identical call would fail the same way, or double the
wait. One deadline (the primary's `deadline_seconds`) covers every attempt and the wait
between them: a retry that would start after it is not made. Then the builtin analyst
writes the result, and the report records the reason, the model that was tried, the tokens
the failed attempts cost and what the failed answers had removed. LLM failures never raise.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from healthpipe.analysts.builtin import BuiltinAnalyst
from healthpipe.analysts.grounding import removed_statements
from healthpipe.analysts.llm import LLMAnalyst
from healthpipe.domain.documents import Brief
from healthpipe.domain.insights import AnalystReport, Usage
from healthpipe.ports import Analyst, AnalystError

MAX_ATTEMPTS = 2
MAX_RETRY_DELAY_SECONDS = 10.0
logger = logging.getLogger("healthpipe.analyst")


FEEDBACK_REASONS = frozenset({"malformed_output", "schema_invalid", "ungrounded"})
MIN_ATTEMPT_SECONDS = 0.05  # a retry with less time than this left is not made
UNSAFE_REASONS = {
    "reassurance": "reassurance while {} need review",
    "diagnosis": "diagnosis",
    "medication": "medication",
}


def _feedback(error: AnalystError) -> str:
    """Why the previous answer was rejected, for the retry prompt."""
    text = error.detail
    if error.grounding:
        dropped = error.grounding.get("dropped", [])
        bad = [n for d in dropped if "misattributed" not in d for n in d.get("unsupported", [])]
        if bad:
            text += "; numbers not in the facts: " + ", ".join(dict.fromkeys(bad))
        wrong = [n for d in dropped for n in d.get("misattributed", [])]
        if wrong:
            text += "; numbers of another vital: " + ", ".join(dict.fromkeys(wrong))
        unsafe = [_unsafe(d) for d in dropped if d.get("reason") in UNSAFE_REASONS]
        if unsafe:
            text += "; statements removed as " + ", ".join(dict.fromkeys(unsafe))
    return text


def _unsafe(record: dict[str, Any]) -> str:
    """A removed statement's reason for the retry prompt ("reassurance while flagged trends
    need review")."""
    words = UNSAFE_REASONS[record["reason"]]
    return words.format(" and ".join(record.get("while") or ["findings"]))


class GuardedAnalyst(Analyst):
    def __init__(
        self,
        primary: LLMAnalyst,
        fallback: Analyst | None = None,
        *,
        retry_delay_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.primary = primary
        self.fallback = fallback or BuiltinAnalyst()
        self.provider = primary.provider
        self.model = primary.model
        self.retry_delay_seconds = retry_delay_seconds
        self.sleep = sleep

    def _analyze(self, brief: Brief) -> AnalystReport:
        spent = Usage()
        error: AnalystError | None = None
        attempts = 0
        deadline = self.primary.new_deadline()
        while attempts < MAX_ATTEMPTS:
            attempts += 1
            try:
                feedback = None
                if error is not None and error.reason in FEEDBACK_REASONS:
                    feedback = _feedback(error)
                report = self.primary.attempt(brief, feedback=feedback, deadline=deadline)
            except AnalystError as exc:
                error, spent = exc, spent.plus(exc.usage)
            except Exception as exc:  # an adapter bug must not stop the pipeline
                logger.exception("analyst failed unexpectedly")
                error = AnalystError(
                    "unexpected_error", f"{type(exc).__name__}: {exc}", retryable=False
                )
            else:
                return report.model_copy(
                    update={
                        "attempts": attempts,
                        "usage": spent.plus(report.usage),
                        "latency_ms": 0,
                    }
                )
            logger.warning(
                "analyst attempt failed",
                extra={
                    "fields": {
                        "provider": self.provider,
                        "model": self.model,
                        "reason": error.reason,
                        "attempt": attempts,
                        "retryable": error.retryable,
                    }
                },
            )
            if not error.retryable or attempts >= MAX_ATTEMPTS:
                break
            delay = self._delay(error)
            if deadline - time.monotonic() - delay < MIN_ATTEMPT_SECONDS:
                error.detail += "; no time left for a retry within the total deadline"
                break
            self.sleep(delay)
        assert error is not None
        return self._fall_back(brief, error, attempts, spent)

    def _delay(self, error: AnalystError) -> float:
        wanted = self.retry_delay_seconds if error.retry_after is None else error.retry_after
        return max(0.0, min(wanted, MAX_RETRY_DELAY_SECONDS))

    def _fall_back(
        self, brief: Brief, error: AnalystError, attempts: int, spent: Usage
    ) -> AnalystReport:
        report = self.fallback.analyze(brief)
        grounding = dict(report.grounding)
        if error.grounding is not None:
            grounding["llm"] = error.grounding
        grounding["removed"] = removed_statements(grounding)
        return report.model_copy(
            update={
                "fallback_reason": error.reason,
                "fallback_detail": error.detail,
                "attempted": f"{self.provider}:{self.model}",
                "attempts": attempts,
                "usage": spent,
                "grounding": grounding,
                "latency_ms": 0,
            }
        )

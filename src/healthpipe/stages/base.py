"""What every stage receives (the ports) and returns (the outcome and the events it emits)."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from healthpipe import interrupts
from healthpipe.errors import TransientError
from healthpipe.events import Event
from healthpipe.ports import (
    AnalysisStore,
    Analyst,
    EventBus,
    Ledger,
    LedgerRecord,
    Mailer,
    Metrics,
    ObjectStore,
    ParticipantHistoryStore,
)
from healthpipe.stages.settings import (
    AnalyzeSettings,
    DeliverySettings,
    DigestSettings,
    IngestSettings,
    NotifySettings,
)

T = TypeVar("T")

Outcome = Literal["done", "skipped", "in_progress", "rejected", "ignored"]


@dataclass
class Ports:
    """The dependencies of the stages, built by `bootstrap` for one runtime: the ports, and
    each stage's own typed settings (no stage sees the whole `Settings`)."""

    store: ObjectStore
    ledger: Ledger
    bus: EventBus
    analyses: AnalysisStore
    history: ParticipantHistoryStore
    mailer: Mailer
    analyst: Analyst
    metrics: Metrics
    workdir: Path
    ingest_settings: IngestSettings
    analyze_settings: AnalyzeSettings
    notify_settings: NotifySettings
    digest_settings: DigestSettings
    delivery_settings: DeliverySettings


@dataclass
class StageResult:
    """A stage's outcome, the events it emits and its info; an `in_progress` outcome
    (`run_claimed`) carries the `ClaimHeldError` as `held`, which a Lambda raises to be
    retried."""

    outcome: Outcome
    events: list[Event] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    held: ClaimHeldError | None = None


@contextmanager
def timed(timings: dict[str, int], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = int((time.perf_counter() - started) * 1000)


def log_event(logger: logging.Logger, message: str, **fields: Any) -> None:
    """INFO log with structured fields: ids, counts and timings only, never row values."""
    logger.info(message, extra={"fields": fields})


class ClaimHeldError(TransientError):
    """Another worker holds a live claim on `key`: retry after its lease."""

    def __init__(self, key: str, record: LedgerRecord) -> None:
        super().__init__(f"another worker holds the claim on {key}; retry after its lease")
        self.key = key
        self.record = record


def run_once(
    ledger: Ledger,
    key: str,
    work: Callable[[], T],
    *,
    save: Callable[[T], dict[str, Any]],
    replay: Callable[[dict[str, Any]], T],
    now: float,
) -> T:
    """Run `work` at most once per `key`, in the shape of Powertools' `idempotent_function`.

    The one place that decides from the ledger claim at `now` (epoch seconds):
    - acquired (no record, an expired lease, or a dead owner): run `work`, store
      `save(value)` as the claim's result, and return the value. On any failure (or
      Ctrl-C), the completion included, release the claim (a retry can take it at once,
      instead of finding our own live claim "in progress" until the lease runs out) and
      re-raise;
    - completed: return `replay(stored result)` without running `work`;
    - in progress under another live owner: raise `ClaimHeldError` (retry later).
    """
    claim = ledger.claim(key, now=now)
    if claim.outcome == "completed":
        return replay(claim.record.result)
    if claim.outcome == "in_progress":
        raise ClaimHeldError(key, claim.record)
    try:
        value = work()
        ledger.complete(key, save(value))
    except BaseException:  # Ctrl-C too: the next run takes the claim at once
        ledger.release(key)
        raise
    return value


@dataclass(frozen=True)
class ExecutionClaim:
    """A claim held across several invocations, owned by one execution: the chunked
    ingest's Step Functions execution claims the upload in its first state (Plan) and
    completes it in its last (Assemble), from different Lambdas. The other shape of claim
    beside `run_once` (one call does the work), and like it the only other place that
    claims, completes or releases: whichever Lambda calls, the ledger acts as `owner`."""

    ledger: Ledger
    key: str
    owner: str

    def _as_owner(self) -> Ledger:
        as_owner = copy.copy(self.ledger)
        as_owner.owner = self.owner
        return as_owner

    def take(self) -> LedgerRecord | None:
        """None when this execution holds the claim: acquired now, or already its own (a
        state retried in the same execution, e.g. after a timeout); otherwise the record
        that holds it (completed, or in progress under another execution)."""
        claim = self._as_owner().claim(self.key)
        if claim.acquired:
            return None
        ours = claim.outcome == "in_progress" and claim.record.owner == self.owner
        return None if ours else claim.record

    def complete(self, result: dict[str, Any]) -> None:
        self._as_owner().complete(self.key, result)

    def release(self) -> None:
        self._as_owner().release(self.key)


def run_claimed(
    ports: Ports,
    claim_key: str,
    stage: str,
    work: Callable[[], StageResult],
    *,
    logger: logging.Logger,
    context: dict[str, Any],
    save: Callable[[StageResult], dict[str, Any]] = lambda result: result.info,
    replay: Callable[[dict[str, Any]], list[Event]] = lambda stored: [],
    log_fields: dict[str, str] | None = None,
    now: float | None = None,
) -> StageResult:
    """A stage's run under its claim on `claim_key` (`run_once`), as a `StageResult`:
    `work()`'s result when acquired; `skipped` with `replay(stored result)` (the events to
    emit again) when completed; `in_progress`, with the `ClaimHeldError` as `held`, when
    another worker holds the claim. Both
    skip outcomes carry `context` (the ids of the work) and the stored result, and log it
    with `log_fields`. Any failure (the claim's, `work`'s, the completion's) counts a
    StageFailure and is re-raised. `now` defaults to the clock.
    """
    logged = {**context, **(log_fields or {})}

    def replayed(stored: dict[str, Any]) -> StageResult:
        log_event(logger, "duplicate delivery skipped", claim="completed", **logged)
        return StageResult("skipped", replay(stored), {**context, **stored})

    at = time.time() if now is None else now
    try:
        result = run_once(ports.ledger, claim_key, work, save=save, replay=replayed, now=at)
    except ClaimHeldError as held:
        if held.key == claim_key:  # not a nested claim (the alert's) held elsewhere
            log_event(logger, "duplicate delivery skipped", claim="in_progress", **logged)
            return StageResult("in_progress", [], {**context, **held.record.result}, held)
        _count_failure(ports, stage)
        raise
    except Exception as exc:
        if not interrupts.interrupted(exc):  # Ctrl-C stopped the stage; it did not fail
            _count_failure(ports, stage)
        raise
    ports.metrics.flush()
    return result


def _count_failure(ports: Ports, stage: str) -> None:
    ports.metrics.add("StageFailures", 1, stage=stage)
    ports.metrics.flush()


# Who wants the analysis's facts as soon as analyze has them (`healthpipe run`'s chart worker
# draws the report's charts beside the rest of the stage): registered by the caller, so the
# stage imports no charting code (the analyzer Lambda's package carries none).
_facts_listeners: list[Callable[[Any], None]] = []


@contextmanager
def facts_listener(listener: Callable[[Any], None]) -> Iterator[None]:
    """While inside, `facts_ready(found)` calls `listener(found)` (in the stage's thread)."""
    _facts_listeners.append(listener)
    try:
        yield
    finally:
        _facts_listeners.remove(listener)


def facts_wanted() -> bool:
    """Whether anyone listens for `facts_ready` (`healthpipe run`'s chart worker; a Lambda
    never does), so that a stage can skip building what nobody reads."""
    return bool(_facts_listeners)


def facts_ready(found: object) -> None:
    """Analyze has the file's facts (`AnalysisFacts`): tell whoever listens."""
    for listener in list(_facts_listeners):
        listener(found)

"""What every stage receives (the ports) and returns (the outcome and the events it emits)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from healthpipe.config import Settings
from healthpipe.events import Event
from healthpipe.ports import AnalysisStore, Analyst, EventBus, Ledger, Mailer, Metrics, ObjectStore

T = TypeVar("T")

Outcome = Literal["done", "skipped", "in_progress", "rejected", "ignored"]


@dataclass
class Ports:
    """The dependencies of the stages, built by `bootstrap` for one runtime."""

    settings: Settings
    store: ObjectStore
    ledger: Ledger
    bus: EventBus
    analyses: AnalysisStore
    mailer: Mailer
    analyst: Analyst
    metrics: Metrics
    workdir: Path


@dataclass
class StageResult:
    outcome: Outcome
    events: list[Event] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


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


def run_claimed(
    ports: Ports,
    claim_key: str,
    stage: str,
    work: Callable[[], T],
    result_of: Callable[[T], dict[str, Any]],
) -> T:
    """Run `work` under our ledger claim on `claim_key` and complete the claim with
    `result_of(value)`. On any failure — the completion included, or every retry would find
    our own live claim "in progress" and the upload would stall — release the claim so that
    the retry can take it at once, count a StageFailure, and re-raise."""
    try:
        value = work()
        ports.ledger.complete(claim_key, result_of(value))
    except Exception:
        ports.ledger.release(claim_key)
        ports.metrics.add("StageFailures", 1, stage=stage)
        ports.metrics.flush()
        raise
    ports.metrics.flush()
    return value

"""What every Lambda handler shares: build the ports once, parse, run the stage, publish.

A `LambdaFunction` is created at import but does nothing until its first invocation: then
it configures Powertools logging (JSON with the correlation id) and builds the ports through
`bootstrap.build_aws`, and keeps both for the container's life. A stage failure is raised
(after the other records of the event ran), so Lambda's retries and the dead-letter queue
see it. A claim held by another worker raises `ClaimHeldError`, a retryable error: the
retry runs after that worker finished (skipped) or its lease expired (taken over).
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from healthpipe.errors import PermanentError, StageError, TransientError
from healthpipe.events import Event
from healthpipe.stages.base import Ports, StageResult

Stage = Callable[[Event, Ports], StageResult]
log = logging.getLogger("healthpipe.lambda")


class ClaimHeldError(TransientError):
    """Another worker holds the claim on this work: retry later."""


class UnroutableEventError(PermanentError):
    """The event is not one this function handles (a wiring mistake: dead-letter it)."""


@dataclass(frozen=True)
class Work:
    """One unit of an invocation: the stage to run (by target name) and its event."""

    target: str
    event: Event


def load_stage(path: str) -> Stage:
    """`module:function` → the function (imported on first use)."""
    module, _, name = path.partition(":")
    stage: Stage = getattr(importlib.import_module(module), name)
    return stage


class LambdaFunction:
    def __init__(
        self,
        name: str,
        stages: dict[str, str],
        parse: Callable[[dict[str, Any]], list[Work]],
        *,
        ports_factory: Callable[[], Ports] | None = None,
        log_stream: IO[str] | None = None,
        correlation_of: Callable[[Event], str | None] = lambda event: event.correlation_id,
    ) -> None:
        self.name = name
        self.stages = stages
        self.parse = parse
        self._ports_factory = ports_factory
        self._log_stream = log_stream
        self.correlation_of = correlation_of
        self._ports: Ports | None = None
        self._logger: Any = None

    # -- lifecycle -------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the cached ports and logger (a new container, for tests)."""
        if self._logger is not None:
            from healthpipe.lambdas.logging_setup import unconfigure_logging

            unconfigure_logging()
        self._ports = None
        self._logger = None

    def ports(self) -> Ports:
        if self._ports is None:
            if self._ports_factory is not None:
                self._ports = self._ports_factory()
            else:
                from healthpipe.bootstrap import build_aws
                from healthpipe.config import load_settings

                self._ports = build_aws(load_settings())
        return self._ports

    def logger(self) -> Any:
        if self._logger is None:
            from healthpipe.lambdas.logging_setup import configure_logging

            self._logger = configure_logging(
                f"healthpipe-{self.name}", self._log_stream or sys.stdout
            )
        return self._logger

    # -- invocation ------------------------------------------------------------------------
    def __call__(self, raw: dict[str, Any], context: Any = None) -> dict[str, Any]:
        cold_start = self._logger is None
        logger = self.logger()
        logger.append_keys(cold_start=cold_start)
        if context is not None:
            logger.append_keys(request_id=getattr(context, "aws_request_id", None))
        work = self.parse(raw)
        results: list[dict[str, Any]] = []
        failures: list[BaseException] = []
        for item in work:
            try:
                results.append(self._run(item, logger))
            except Exception as exc:  # raised below, after the other records ran
                failures.append(exc)
                log.error(
                    "stage failed",
                    extra={
                        "fields": {
                            "target": item.target,
                            "dataset_id": item.event.dataset_id,
                            "error_type": type(exc).__name__,
                            "error": str(exc)[:300],
                        }
                    },
                )
        if len(failures) == 1:
            raise failures[0]
        if failures:
            raise StageError(
                self.name, f"{len(failures)} of {len(work)} records failed: {failures[0]}"
            ) from failures[0]
        return {"function": self.name, "results": results}

    def _run(self, item: Work, logger: Any) -> dict[str, Any]:
        stage = load_stage(self.stages[item.target])
        correlation_id = self.correlation_of(item.event) or item.event.id
        logger.set_correlation_id(correlation_id)
        started = time.perf_counter()
        result = stage(item.event, self.ports())
        if result.outcome == "in_progress":
            raise ClaimHeldError(
                f"{item.target}: another worker holds the claim on dataset "
                f"{result.info.get('dataset_id')}; retry after its lease"
            )
        self.ports().bus.publish_many(result.events)
        outcome = {
            "target": item.target,
            "outcome": result.outcome,
            "dataset_id": result.info.get("dataset_id"),
            "events": [event.detail_type for event in result.events],
        }
        log.info(
            "stage finished",
            extra={
                "fields": {**outcome, "duration_ms": int((time.perf_counter() - started) * 1000)}
            },
        )
        return outcome

"""What every Lambda handler shares: build the ports once, parse, run the stage, publish.

Clients and settings are built once per execution environment, outside the handler, and
lazily. A `LambdaFunction` is a module global of its handler module (`_function`), created at
import but doing nothing then (no client, no environment read, no network: a test checks it).
On its first invocation it configures Powertools logging (JSON with the correlation id),
reads the settings and builds the ports through `bootstrap.build_aws`, every boto3 client from
one session (`adapters.aws.session.new_session`; no EventBridge client for a function that
publishes nothing, `publishes`), and keeps them on that global. Lambda keeps
a module's globals for the life of its execution environment, so every warm invocation
reuses them: the same reuse as clients created at module level (Powertools' examples), while
importing stays free of side effects. What it gives up is building the clients during the
init phase: the first invocation pays that (0.8 s for five clients from one session on the
test machine, against 1.7-2.0 s with a session per client).

Each invocation works in a fresh directory under `<workdir>/invocations/`; the directories
left there by invocations Lambda killed (timeout, out of memory: no cleanup ran, and `/tmp`
survives into the next invocation) are removed first.

Failures, by kind:
- transient (`TransientError`: throttling, 5xx, lost connections; `stages.base`'s
  `ClaimHeldError`, a claim held by another worker, which a stage's `in_progress` result
  carries) and unexpected errors are raised, after the other records
  of the event ran, so Lambda retries them and then dead-letters the event;
- permanent (`PermanentError`: a missing object, access denied, a file too large for this
  function, refused by `admit` before any download) cannot succeed on a retry: the
  invocation ends normally and publishes the function's failure event (`Data Processing
  Failed` from the ingestor, `Data Analysis Failed` from the others) with the reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from healthpipe.errors import PermanentError, StageError, TransientError
from healthpipe.events import Event

if TYPE_CHECKING:  # the stages (settings, pydantic) load with the first invocation's stage
    from healthpipe.config import Settings
    from healthpipe.stages.base import Ports, StageResult

    Stage = Callable[[Event, Ports], StageResult]

log = logging.getLogger("healthpipe.lambda")
INVOCATIONS = "invocations"


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


@contextlib.contextmanager
def traced(name: str, dataset_id: str | None) -> Iterator[None]:
    """An X-Ray subsegment around a stage, through the Powertools Tracer, when tracing is on
    (`POWERTOOLS_TRACE_DISABLED` is not true and this runs in Lambda: Terraform's
    `tracing_enabled`). The Tracer (and the X-Ray SDK) is imported on the first traced call
    only, so a function with tracing off never pays for the import."""
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() == "true" or not os.environ.get(
        "AWS_LAMBDA_FUNCTION_NAME"
    ):
        yield
        return
    from aws_lambda_powertools import Tracer

    with Tracer().provider.in_subsegment(name) as subsegment:
        if dataset_id:
            subsegment.put_annotation("dataset_id", dataset_id)
        yield


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
        failure: tuple[str, str] | None = None,
        admit: Callable[[Work, Path, Any], str | None] | None = None,
    ) -> None:
        self.name = name
        self.stages = stages
        self.parse = parse
        self._ports_factory = ports_factory
        self._log_stream = log_stream
        self.correlation_of = correlation_of
        self.failure = failure  # (source, detail-type) of the event a permanent failure emits
        self.admit = admit  # (work, work dir, context) -> why it is refused, before any I/O
        self._ports: Ports | None = None
        self._settings: Settings | None = None
        self._logger: Any = None
        self.workdir: Path | None = None  # None: /tmp/healthpipe (tests give their own)

    # -- lifecycle -------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the cached ports and logger (a new container, for tests)."""
        if self._logger is not None:
            from healthpipe.lambdas.logging_setup import unconfigure_logging

            unconfigure_logging()
        self._ports = None
        self._settings = None
        self._logger = None

    def settings(self) -> Settings:
        """This execution environment's settings, read once (on its first invocation): its
        ports are built from them, and `parse` may read them too (the ingestor's routing)."""
        if self._settings is None:
            from healthpipe.config import load_settings

            self._settings = load_settings()
        return self._settings

    def ports(self) -> Ports:
        if self._ports is None:
            if self._ports_factory is not None:
                self._ports = self._ports_factory()
            else:
                from healthpipe.adapters.aws.session import new_session
                from healthpipe.bootstrap import build_aws

                self._ports = build_aws(
                    self.settings(),
                    session=new_session(),
                    workdir=self.workdir,
                    silent=None if self.publishes() else self.name,
                )
        return self._ports

    def publishes(self) -> bool:
        """Whether this function publishes events: `event_bus` is among its declared
        adapters (`FUNCTIONS`, which its IAM role is made from); else its ports get no
        EventBridge client (the notifier, the Map and Release states). A function not
        declared there (a test's) publishes."""
        from healthpipe.lambdas import AWS, FUNCTIONS

        spec = FUNCTIONS.get(self.name)
        return spec is None or f"{AWS}event_bus" in spec.adapters

    def logger(self) -> Any:
        if self._logger is None:
            from healthpipe.lambdas.logging_setup import configure_logging

            self._logger = configure_logging(
                f"healthpipe-{self.name}", self._log_stream or sys.stdout
            )
        return self._logger

    # -- invocation ------------------------------------------------------------------------
    def start_invocation(self, context: Any) -> Any:
        """The logger of this invocation: built on the first (a cold start), with the cold
        start flag and the request id among its keys."""
        cold_start = self._logger is None
        logger = self.logger()
        logger.append_keys(cold_start=cold_start)
        if context is not None:
            logger.append_keys(request_id=getattr(context, "aws_request_id", None))
        return logger

    def __call__(self, raw: dict[str, Any], context: Any = None) -> dict[str, Any]:
        logger = self.start_invocation(context)
        work = self.parse(raw)
        results: list[dict[str, Any]] = []
        failures: list[BaseException] = []
        ports = self.ports()
        workdir = fresh_workdir(ports.workdir / INVOCATIONS)
        try:
            invocation = dataclasses.replace(ports, workdir=workdir)
            for item in work:
                try:
                    refusal = self.admit(item, workdir, context) if self.admit else None
                    if refusal is not None:
                        results.append(self._give_up(item, refusal, "refused", logger))
                    else:
                        results.append(self._run(item, invocation, logger))
                except PermanentError as exc:
                    try:
                        results.append(self._give_up(item, str(exc), "failed", logger))
                    except Exception as publishing:  # the failure event itself failed
                        failures.append(publishing)
                except Exception as exc:  # raised below, after the other records ran
                    failures.append(exc)
                    self._log_failure(item, exc, retry=True)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        if len(failures) == 1:
            raise failures[0]
        if failures:
            raise StageError(
                self.name, f"{len(failures)} of {len(work)} records failed: {failures[0]}"
            ) from failures[0]
        return {"function": self.name, "results": results}

    def _run(self, item: Work, ports: Ports, logger: Any) -> dict[str, Any]:
        stage = load_stage(self.stages[item.target])
        correlation_id = self.correlation_of(item.event) or item.event.id
        logger.set_correlation_id(correlation_id)
        started = time.perf_counter()
        with traced(f"## {item.target}", item.event.dataset_id):
            result = stage(item.event, ports)
        if result.outcome == "in_progress":  # another worker holds the claim: retried
            raise result.held or TransientError(
                f"{item.target}: dataset {result.info.get('dataset_id')} is in progress "
                "elsewhere; retry later"
            )
        ports.bus.publish_many(result.events)
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

    def _give_up(self, item: Work, reason: str, outcome: str, logger: Any) -> dict[str, Any]:
        """A permanent failure: publish the failure event (no Lambda retry can help)."""
        correlation_id = self.correlation_of(item.event) or item.event.id
        logger.set_correlation_id(correlation_id)
        self._log_failure(item, PermanentError(reason), retry=False)
        events = []
        if self.failure is not None:
            # typed like every other event detail; imported here, not at handler import
            from healthpipe.domain.documents.events import ProcessingFailed

            source, detail_type = self.failure
            detail = ProcessingFailed(
                correlation_id=correlation_id,
                dataset_id=item.event.dataset_id,
                status=outcome,
                error=reason[:1000],
                error_code=f"{item.target}_{outcome}",
                retryable=False,
            ).as_json()
            events = [Event(source, detail_type, detail)]
            self.ports().bus.publish_many(events)
        return {
            "target": item.target,
            "outcome": outcome,
            "dataset_id": item.event.dataset_id,
            "events": [event.detail_type for event in events],
            "error": reason[:300],
        }

    def _log_failure(self, item: Work, exc: BaseException, *, retry: bool) -> None:
        log.error(
            "stage failed",
            extra={
                "fields": {
                    "target": item.target,
                    "dataset_id": item.event.dataset_id,
                    "error_type": type(exc).__name__,
                    "error": str(exc)[:300],
                    "retry": retry,
                }
            },
        )


def fresh_workdir(root: Path) -> Path:
    """A new, empty directory under `root`, after removing what killed invocations left.

    One execution environment runs one invocation at a time, so whatever is under `root`
    when an invocation starts belongs to an invocation that did not finish."""
    if root.exists():
        for stale in root.iterdir():
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
    workdir = root / uuid.uuid4().hex
    workdir.mkdir(parents=True)
    return workdir

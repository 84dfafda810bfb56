"""What the six functions of the chunked ingest share (the states of the Step Functions state
machine, infra/terraform/statemachine/chunked_ingest.asl.json.tftpl): a task's input is the state's
payload and its return value the state's result, not EventBridge events.

A `StepTask` is a `LambdaFunction` (ports built once per execution environment, Powertools
logging, a fresh work directory per invocation) whose invocation parses the payload into the
step's typed request, runs the step (`stages.chunked`), publishes the events it returns and
returns its JSON result. Failures reach the state machine under the two names its `Retry`
tells apart: `PermanentError` (no retry can help: an unusable chunk, a missing object, access
denied) and anything else (retried with backoff, then the execution fails and publishes Data
Processing Failed).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from healthpipe.errors import InputError, PermanentError, TransientError
from healthpipe.events import Event
from healthpipe.lambdas.runtime import (
    INVOCATIONS,
    LambdaFunction,
    Work,
    fresh_workdir,
    load_stage,
    traced,
)

if TYPE_CHECKING:
    from healthpipe.stages.base import Ports

log = logging.getLogger("healthpipe.lambda")
# (the step function, the raw payload, the invocation's ports) -> (result JSON, events)
Runner = Callable[[Callable[..., Any], dict[str, Any], "Ports"], tuple[dict[str, Any], list[Event]]]


def _no_events(raw: dict[str, Any]) -> list[Work]:
    return []


class StepTask(LambdaFunction):
    def __init__(self, name: str, stage: str, run: Runner) -> None:
        super().__init__(name, {name: stage}, _no_events)
        self.run = run

    def __call__(self, raw: dict[str, Any], context: Any = None) -> dict[str, Any]:
        self.start_invocation(context)
        ports = self.ports()
        workdir = fresh_workdir(ports.workdir / INVOCATIONS)
        started = time.perf_counter()
        try:
            step = load_stage(self.stages[self.name])
            with traced(f"## {self.name}", None):
                result, events = self.run(step, raw, dataclasses.replace(ports, workdir=workdir))
            ports.bus.publish_many(events)
            ports.metrics.flush()
        except InputError as exc:
            self._failed(exc, retry=False)
            raise PermanentError(f"{exc.code}: {exc.reason}") from None
        except PermanentError as exc:
            self._failed(exc, retry=False)
            raise PermanentError(str(exc)[:1000]) from None
        except TransientError as exc:
            self._failed(exc, retry=True)
            raise TransientError(str(exc)[:1000]) from None
        except Exception as exc:  # retried by the state machine, as an unknown error
            self._failed(exc, retry=True)
            raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        log.info(
            "step finished",
            extra={
                "fields": {
                    "step": self.name,
                    "events": [event.detail_type for event in events],
                    "duration_ms": int((time.perf_counter() - started) * 1000),
                }
            },
        )
        return result

    def _failed(self, exc: BaseException, *, retry: bool) -> None:
        log.error(
            "step failed",
            extra={
                "fields": {
                    "step": self.name,
                    "error_type": type(exc).__name__,
                    "error": str(exc)[:300],
                    "retry": retry,
                }
            },
        )

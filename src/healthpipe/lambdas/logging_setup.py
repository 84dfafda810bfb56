"""Powertools structured logging for the handlers (configured on the first invocation).

healthpipe's own loggers (`healthpipe.*`) write through the Powertools JSON formatter, so
every line carries the service name, the level and the pipeline's correlation id. Only ids,
counts and timings are logged at INFO, never row values or user ids.
"""

from __future__ import annotations

import logging
from typing import IO

from aws_lambda_powertools import Logger

MARK = "_healthpipe_lambda"


def configure_logging(service: str, stream: IO[str]) -> Logger:
    powertools = Logger(service=service, stream=stream)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(powertools.registered_formatter)
    setattr(handler, MARK, True)
    package = logging.getLogger("healthpipe")
    for old in [h for h in package.handlers if getattr(h, MARK, False)]:
        package.removeHandler(old)
    package.addHandler(handler)
    package.setLevel(powertools.log_level or logging.INFO)
    package.propagate = False
    return powertools


def unconfigure_logging() -> None:
    """Undo `configure_logging` (a container's end, in tests)."""
    package = logging.getLogger("healthpipe")
    for old in [h for h in package.handlers if getattr(h, MARK, False)]:
        package.removeHandler(old)
    package.propagate = True

"""Logs of the `healthpipe` command: nothing by default (the command prints its own one-line
outcome and errors), readable lines on stderr with `-v`, JSON lines with `--log-json`.
One line per event with ids, counts and timings (no health data)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at emit time (test runners and hosts swap it; a
    handler bound to a closed stream would print a 'Logging error' traceback instead)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


class TextFormatter(logging.Formatter):
    """`LEVEL logger: message key=value ...` for a person reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            line += " (" + ", ".join(f"{k}={v}" for k, v in fields.items()) + ")"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(verbose: bool = False, as_json: bool = False) -> None:
    """healthpipe's logs on stderr at INFO: readable with `verbose`, JSON lines with `as_json`;
    neither: no log output at all (idempotent; the last call wins)."""
    logger = logging.getLogger("healthpipe")
    logger.propagate = False
    for existing in [h for h in logger.handlers if getattr(h, "_healthpipe", False)]:
        logger.removeHandler(existing)
    handler: logging.Handler
    if verbose or as_json:
        logger.setLevel(logging.INFO)
        handler = StderrHandler()
        handler.setFormatter(JsonFormatter() if as_json else TextFormatter())
    else:  # a handler that drops everything, or Python's last resort would print warnings
        logger.setLevel(logging.WARNING)
        handler = logging.NullHandler()
    setattr(handler, "_healthpipe", True)  # noqa: B010 (marks our handler)
    logger.addHandler(handler)

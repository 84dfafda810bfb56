"""Structured JSON logs: one line per event with ids, counts and timings (no health data)."""

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


def configure(level: int = logging.WARNING) -> None:
    """Send healthpipe's logs to stderr as JSON lines (idempotent)."""
    logger = logging.getLogger("healthpipe")
    logger.setLevel(level)
    if not any(getattr(h, "_healthpipe", False) for h in logger.handlers):
        handler = StderrHandler()
        handler.setFormatter(JsonFormatter())
        handler._healthpipe = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
    for existing in logger.handlers:
        existing.setLevel(level)

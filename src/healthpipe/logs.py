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


def configure(level: int = logging.WARNING) -> None:
    """Send healthpipe's logs to stderr as JSON lines (idempotent)."""
    logger = logging.getLogger("healthpipe")
    logger.setLevel(level)
    if not any(getattr(h, "_healthpipe", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._healthpipe = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
    for existing in logger.handlers:
        existing.setLevel(level)

"""Trends across uploads: the change of a participant's daily median of one vital over the
history window (see `domain/trends.py`, which computes them, and docs/trends.md)."""

from __future__ import annotations

from pydantic import Field

from healthpipe.domain.documents.base import Document, Number


class Trend(Document):
    """One participant's trend of one vital, flagged by the rule `rule` (by raw id: the
    analysis stays in the object store; stores and the brief see pseudonyms)."""

    user_id: str
    metric: str
    rule: str
    criterion: str
    span_days: int
    days: int  # days with data in the span
    first_day: str
    last_day: str
    slope_per_day: Number
    change: Number  # the slope over the rule's span
    start: Number  # the fitted daily median on the span's first day with data
    end: Number  # ... on its last day
    daily: list[Number] = Field(default_factory=list)  # the daily medians, oldest first


class Trends(Document):
    """The flagged trends of the participants of one file."""

    window_days: int
    participants_assessed: int = 0  # participants with enough days for at least one rule
    flagged: list[Trend] = Field(default_factory=list)

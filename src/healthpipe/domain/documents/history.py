"""A participant's history across uploads: what the participant-history store keeps and what
analyze hands on (baselines over a rolling window, daily medians for trends).

Stored per pseudonym (`identity.pseudonym`), never by raw id. The store keeps one
`DayHistogram` per (pseudonym, reading day, dataset): for each vital, how many of the
participant's valid readings of that day in that file had each value at the chart's
resolution (`clinical.CHART_SCALE`; `bins` maps the value times the scale, a whole number,
to its count). Histograms merge by adding counts, so a baseline over the window is exact at
the chart's resolution and costs the window's bins, not its readings; re-analysing a file
replaces its own histograms (the dataset id is part of the key).
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import Field

from healthpipe.domain.documents.base import Complete, Document

HISTORY_SCHEMA_VERSION = "1"


class DailyVitalSummary(Complete):
    """One day of one vital: the number of readings and their median (charted values)."""

    day: date
    n: int
    median: float


class DayHistogram(Document):
    """One participant's readings of one day in one file, as counts per charted value, and
    each vital's count and median of them (`summary`, kept so that a later file's analysis
    reads a day's median instead of recomputing it; absent in histograms stored without)."""

    SCHEMA_VERSION: ClassVar[str] = HISTORY_SCHEMA_VERSION

    pseudonym: str
    day: date
    dataset_id: str
    # vital -> {value × CHART_SCALE[vital] (a whole number): readings}
    bins: dict[str, dict[int, int]] = Field(default_factory=dict)
    summary: dict[str, DailyVitalSummary] = Field(default_factory=dict)


class VitalBaseline(Complete):
    """A participant's baseline of one vital over the window: the median and the robust
    spread of `domain/baseline.py` (MAD, or the mean absolute deviation when the MAD is 0),
    from `n` readings between `window_start` and `window_end` (reading days, inclusive)."""

    vital: str
    median: float
    spread: float
    mad: float
    meanad: float
    n: int
    window_start: date
    window_end: date


class ParticipantHistory(Complete):
    """What analyze knows of one participant of a file: baselines over the window before the
    file plus the file, and each vital's daily medians over the same days (oldest first).

    `has_history` is False for a participant with no readings in the window before this file
    ("no history yet"): the baselines then come from the file alone."""

    pseudonym: str
    has_history: bool
    window_start: date
    window_end: date
    history_days: int = 0  # days with readings before this file, within the window
    baselines: dict[str, VitalBaseline] = Field(default_factory=dict)
    daily: dict[str, list[DailyVitalSummary]] = Field(default_factory=dict)

"""One participant's history across uploads, as `healthpipe history PARTICIPANT` shows it
(`--json` is this document): their vitals day by day, their findings by kind, their episodes
and the files their readings came from. Read from the lake (`dataops/history.py`) and the
analysis store; the participant appears by pseudonym only, never by raw id.

Not to be confused with `documents/history.py`, what analyze keeps per participant for
baselines and trends (histograms over a rolling window): this one is a read-only view of
everything the lake holds on one participant, built on request.
"""

from __future__ import annotations

from pydantic import Field

from healthpipe.domain.documents.base import Complete, Counts, Number


class VitalDay(Complete):
    """One reading day (UTC) of one vital: readings, their median, lowest and highest."""

    day: str  # YYYY-MM-DD of the readings' event time (UTC), not the ingestion day
    n: int
    median: Number
    min: Number
    max: Number


class VitalHistory(Complete):
    """One vital over the participant's whole history."""

    metric: str
    n: int = 0
    median: Number | None = None
    min: Number | None = None
    max: Number | None = None
    latest: Number | None = None
    latest_time: str | None = None  # ISO, UTC
    days: list[VitalDay] = Field(default_factory=list)


class TimelineBaseline(Complete):
    """The participant's baseline of one vital as analyze keeps it (`domain/history.py`):
    median and robust spread (MAD, or the mean absolute deviation when the MAD is 0) of the
    readings in the window, at the chart's resolution."""

    metric: str
    median: Number
    spread: Number
    n: int
    window_start: str  # reading days, inclusive
    window_end: str


class FindingKind(Complete):
    """The participant's findings of one kind, with the criterion the code applies."""

    kind: str
    metric: str
    label: str
    reference: str
    criterion: str
    total: int
    by_severity: Counts = Field(default_factory=dict)


class HistoryEpisode(Complete):
    """An episode the analysis store keeps for the participant (per analysed file)."""

    kind: str
    metric: str = ""
    severity: str = ""
    readings: int = 0
    start_time: str | None = None
    end_time: str | None = None
    worst_value: Number | None = None


class SourceFile(Complete):
    """A file that holds readings of the participant."""

    dataset_id: str
    name: str = ""  # the upload's file name, when the analysis store has it
    analysed: str = ""  # the day (UTC) the analysis store recorded the file's analysis
    readings: int = 0
    findings: int = 0
    first_reading: str | None = None  # ISO, UTC
    last_reading: str | None = None


class TimelineTrend(Complete):
    """A trend rule of `domain/trends.py` that the participant's daily medians meet, over the
    rule's span ending on their last day with readings."""

    metric: str
    rule: str
    criterion: str
    span_days: int
    days: int  # days with readings in the span
    first_day: str
    last_day: str
    change: Number  # the Theil–Sen slope over the rule's span
    start: Number  # the fitted daily median on the span's first day with readings
    end: Number  # ... on its last


class ParticipantTimeline(Complete):
    """Everything the workspace holds on one participant, by pseudonym."""

    pseudonym: str
    readings: int = 0
    first_reading: str | None = None
    last_reading: str | None = None
    vitals: list[VitalHistory] = Field(default_factory=list)
    findings: list[FindingKind] = Field(default_factory=list)
    findings_total: int = 0
    baseline_window_days: int = 0
    baselines: list[TimelineBaseline] = Field(default_factory=list)  # from the history store
    trends_assessed: bool = False  # enough days with readings for at least one trend rule
    trends: list[TimelineTrend] = Field(default_factory=list)
    episodes: list[HistoryEpisode] = Field(default_factory=list)
    episodes_total: int = 0
    files: list[SourceFile] = Field(default_factory=list)

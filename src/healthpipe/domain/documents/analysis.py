"""The analysis analyze writes under `analyzed/<dataset_id>.json`, and its parts.

Key order is the order the fields are declared in: it is the order of today's documents, so
the JSON bytes do not change (tests/unit/test_documents.py loads documents written before
these models existed and writes them back byte for byte).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from healthpipe import constants as c
from healthpipe.domain.documents.base import Complete, Counts, Document, JsonObject, Number
from healthpipe.domain.documents.history import VitalBaseline
from healthpipe.domain.documents.manifest import Source, TimeRange
from healthpipe.domain.documents.trend import Trends
from healthpipe.domain.insights import Usage


# --------------------------------------------------------------------------- quality, metrics
class DataQuality(Document):
    rows_input: int
    rows_valid: int
    rows_rejected: int
    reasons: Counts = Field(default_factory=dict)
    rules_profile: str | None = None
    rejected_key: str | None = None


class Histogram(Document):
    edges: list[Number]
    counts: list[int]


class MetricStats(Document):
    """Moments and quantiles of one vital; `None` when it has no reading."""

    count: int = 0
    mean: Number | None = None
    std: Number | None = None
    min: Number | None = None
    p05: Number | None = None
    p25: Number | None = None
    median: Number | None = None
    p75: Number | None = None
    p95: Number | None = None
    max: Number | None = None
    histogram: Histogram | None = None


class News2Partial(Document):
    distribution: Counts = Field(default_factory=dict)
    readings_score_5_or_more: int = 0
    readings_score_7_or_more: int = 0
    readings_with_red_score: int = 0


# --------------------------------------------------------------------------- findings
class Finding(Document):
    """One anomaly on one reading (clinical or baseline)."""

    source_row: int | None = None
    user_id: str
    event_time: str | None = None
    metric: str
    kind: str
    severity: str
    value: Number | None = None
    rule: str | None = None
    systolic_bp: Number | None = None
    diastolic_bp: Number | None = None
    bp_trigger: str | None = None
    during_activity: bool | None = None
    conflicting: bool | None = None
    with_clinical_finding: bool | None = None


class TimelineBucket(Document):
    bucket: str | None = None
    severity: str
    count: int


class Findings(Document):
    """The `anomalies` block: every count, the top findings and the timeline."""

    total: int = 0
    readings_flagged: int = 0
    baseline_with_clinical_finding: int = 0
    heart_rate_during_activity: int = 0
    conflicting: int = 0
    by_severity: Counts = Field(default_factory=dict)
    by_kind: Counts = Field(default_factory=dict)
    by_metric: Counts = Field(default_factory=dict)
    by_rule: Counts = Field(default_factory=dict)
    top: list[Finding] = Field(default_factory=list)
    timeline: list[TimelineBucket] = Field(default_factory=list)


# --------------------------------------------------------------------------- episodes
class Episode(Document):
    """A run of findings of one kind for one participant (`longest` lists fewer fields)."""

    user_id: str
    metric: str
    kind: str
    severity: str
    readings: int
    start_time: str | None = None
    end_time: str | None = None
    peak_value: Number | None = None
    duration_s: Number | None = None
    direction: str | None = None
    worst: str | None = None
    worst_value: Number | None = None
    worst_systolic_bp: Number | None = None
    worst_diastolic_bp: Number | None = None
    worst_time: str | None = None


class Episodes(Document):
    total: int = 0
    by_kind: Counts = Field(default_factory=dict)
    items: list[Episode] = Field(default_factory=list, alias="list")
    longest: Episode | None = None


# --------------------------------------------------------------------------- participants
class SeverityCounts(Complete):
    findings: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0


class Participant(Document):
    """One participant of `users.top` (by raw id: the analysis stays in the object store)."""

    user_id: str
    readings: int
    anomalies: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0
    episodes: int = 0
    worst: str = "none"
    readings_flagged: int = 0
    flagged_pct: Number = 0
    risk_score: Number = 0
    headline: SeverityCounts | None = None
    # False: no readings of the participant in the baseline window before this file ("no
    # history yet"; the baseline is the file's alone). Unset in analyses before issue 18.
    has_history: bool | None = None
    # with a history: the baselines the findings used, per vital (median, spread, n, window)
    baselines: dict[str, VitalBaseline] | None = None


class Participants(Document):
    total: int = 0
    flagged: int = 0
    top: list[Participant] = Field(default_factory=list)


class RedScores(Document):
    readings: int = 0
    by_metric: Counts = Field(default_factory=dict)


class SevereFinding(Document):
    metric: str
    kind: str
    count: int
    value: Number | None = None
    event_time: str | None = None
    systolic: Number | None = None
    diastolic: Number | None = None


class HighParticipant(Document):
    user_id: str
    high: int
    findings: list[SevereFinding] = Field(default_factory=list)


class HighParticipants(Document):
    total: int = 0
    items: list[HighParticipant] = Field(default_factory=list, alias="list")


class Headline(Document):
    """Findings as the report counts them (no baseline finding on a clinical reading)."""

    by_kind: Counts = Field(default_factory=dict)
    by_severity: Counts = Field(default_factory=dict)
    baseline_on_clinical: int = 0


# --------------------------------------------------------------------------- analyst
class AnalystProvenance(Complete):
    """Who wrote the insights; after a fallback, the builtin analyst with the reason."""

    provider: str
    model: str
    fallback_reason: str | None = None
    fallback_detail: str | None = None
    attempted: str | None = None
    attempts: int = 0
    latency_ms: int = 0


class Grounding(Document):
    checked: int = 0
    numbers: int | None = None
    dropped: list[JsonObject] = Field(default_factory=list)
    removed: int | None = None


class Assessment(Document):
    assessable: bool
    status: str
    vitals_not_assessable: dict[str, str] = Field(default_factory=dict)


class AnalysisKeys(Complete):
    manifest: str
    analysis: str
    anomalies: str


def _headline(headline: Headline | None, anomalies: Findings, part: str) -> Counts:
    if headline is not None and part in headline.model_fields_set:
        return dict(getattr(headline, part))
    return dict(getattr(anomalies, part))


class AnalysisFacts(Document):
    """What dataops found in one dataset (no analyst text): the part of an `Analysis` the
    brief, the report and the alert are built from. Same fields as in `Analysis`."""

    readings: int = 0
    time_range: TimeRange = TimeRange()
    metrics: dict[str, MetricStats] = Field(default_factory=dict)
    news2_partial: News2Partial = News2Partial()
    bp_categories: Counts = Field(default_factory=dict)
    anomalies: Findings = Findings()
    episodes: Episodes = Episodes()
    users: Participants = Participants()
    red_scores: RedScores | None = None
    high_participants: HighParticipants | None = None
    headline: Headline | None = None

    def headline_by_severity(self) -> Counts:
        """Findings by severity, a baseline finding on a reading with a clinical finding not
        counted again (older analyses without `headline`: every finding)."""
        return _headline(self.headline, self.anomalies, "by_severity")

    def headline_by_kind(self) -> Counts:
        """Findings by kind, counted as `headline_by_severity` counts them."""
        return _headline(self.headline, self.anomalies, "by_kind")

    def fields(self) -> dict[str, Any]:
        """The set fields by name (typed values), to build an `Analysis` from."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class Analysis(Document):
    """Everything analyze found in one dataset, with the analyst's text and provenance."""

    schema_version: str = c.SCHEMA_VERSION
    dataset_id: str
    correlation_id: str = ""
    created_at: str = ""
    source: Source
    data_quality: DataQuality
    worst_severity: str = "none"
    readings: int = 0
    time_range: TimeRange = TimeRange()
    metrics: dict[str, MetricStats] = Field(default_factory=dict)
    news2_partial: News2Partial = News2Partial()
    bp_categories: Counts = Field(default_factory=dict)
    anomalies: Findings = Findings()
    episodes: Episodes = Episodes()
    users: Participants = Participants()
    red_scores: RedScores | None = None
    high_participants: HighParticipants | None = None
    headline: Headline | None = None
    analyst: AnalystProvenance | None = None
    usage: Usage = Usage()
    grounding: Grounding = Grounding()
    disclaimer: str = ""
    insights: list[str] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list)
    summary: str = ""
    risk_level: str = ""
    assessment: Assessment | None = None
    trends: Trends | None = None  # across uploads (issue 18); unset in older analyses
    keys: AnalysisKeys | None = None
    timings: Counts = Field(default_factory=dict)

    def facts(self) -> AnalysisFacts:
        """The dataops facts of this analysis (the same part objects, not copies)."""
        names = AnalysisFacts.model_fields
        return AnalysisFacts.model_construct(
            _fields_set=self.model_fields_set & set(names),
            **{name: getattr(self, name) for name in names},
        )

    def headline_by_severity(self) -> Counts:
        """See `AnalysisFacts.headline_by_severity`."""
        return _headline(self.headline, self.anomalies, "by_severity")

    def headline_by_kind(self) -> Counts:
        """See `AnalysisFacts.headline_by_kind`."""
        return _headline(self.headline, self.anomalies, "by_kind")

"""The analyst's brief: de-identified aggregates only (see `domain/brief.py`, which builds it).

Participants appear as P01, P02, … (`participant`), never by id. `as_json()` is exactly what an
LLM analyst is sent; the key order is the order of the fields below.
"""

from __future__ import annotations

from pydantic import Field, JsonValue

from healthpipe.domain.documents.analysis import Assessment, News2Partial, RedScores
from healthpipe.domain.documents.base import Counts, Document, Number


class BriefQuality(Document):
    rows_input: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    reject_reasons: Counts = Field(default_factory=dict)
    rules_profile: str | None = None


class Shares(Document):
    """Shares in percent an analyst is likely to quote."""

    readings_flagged: Number = 0
    rows_rejected: Number = 0
    participants_flagged: Number = 0
    news2_score_5_or_more: Number = 0
    news2_score_7_or_more: Number = 0
    bp_stage_2_or_crisis: Number = 0
    bp_categories: dict[str, Number] = Field(default_factory=dict)


class BriefStats(Document):
    count: int = 0
    mean: Number | None = None
    std: Number | None = None
    min: Number | None = None
    p05: Number | None = None
    median: Number | None = None
    p95: Number | None = None
    max: Number | None = None


class HighPerson(Document):
    participant: str
    high_findings: int
    readings: list[str] = Field(default_factory=list)
    sentence: str = ""


class HighSeverity(Document):
    participants: int = 0
    items: list[HighPerson] = Field(default_factory=list, alias="list")


class BriefFindings(Document):
    total: int = 0
    readings_flagged: int = 0
    by_severity: Counts = Field(default_factory=dict)
    by_kind: Counts = Field(default_factory=dict)
    by_metric: Counts = Field(default_factory=dict)
    headline_by_kind: Counts = Field(default_factory=dict)
    headline_by_severity: Counts = Field(default_factory=dict)


class BriefEpisode(Document):
    participant: str
    metric: str
    kind: str
    severity: str
    readings: int
    duration_minutes: Number = 0
    peak_value: Number | None = None
    whole_file: bool | None = None  # the longest only: whether it is the whole file's


class BriefEpisodes(Document):
    total: int = 0
    by_kind: Counts = Field(default_factory=dict)
    longest: BriefEpisode | None = None
    top: list[BriefEpisode] = Field(default_factory=list)


class AtRisk(Document):
    participant: str
    readings: int = 0
    anomalies: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0
    episodes: int = 0
    worst: str = "none"
    risk_score: Number = 0


class BriefTrend(Document):
    """A flagged trend of one participant's daily median (`domain/trends.py`)."""

    participant: str
    metric: str
    rule: str
    criterion: str
    span_days: int
    days: int
    change: Number
    start: Number
    end: Number


class Brief(Document):
    """What an analyst may see of one analysis."""

    assessment: Assessment
    data_quality: BriefQuality
    readings: int = 0
    participants: int = 0
    participants_flagged: int = 0
    shares_pct: Shares = Shares()
    metrics: dict[str, BriefStats] = Field(default_factory=dict)
    news2_partial: News2Partial = News2Partial()
    red_scores: RedScores = RedScores()
    high_severity: HighSeverity = HighSeverity()
    bp_categories: Counts = Field(default_factory=dict)
    anomalies: BriefFindings = BriefFindings()
    episodes: BriefEpisodes = BriefEpisodes()
    participants_at_risk: list[AtRisk] = Field(default_factory=list)
    # flagged trends over the history window (unset when the analysis had no history)
    trends_window_days: int | None = None
    trends: list[BriefTrend] = Field(default_factory=list)
    reference: dict[str, JsonValue] = Field(default_factory=dict)

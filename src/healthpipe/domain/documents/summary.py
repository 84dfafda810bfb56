"""What the analysis store keeps: one bounded summary per dataset, one item per flagged
participant or episode. Participants appear by pseudonym (`user_key`) only.

Summaries carry no `schema_version` on disk (none did before these models); its absence means
version "1". The DynamoDB adapter may trim a summary under its item budget: lists and strings
are shortened, `_trimmed` says so, and fields it had to drop are named in `_dropped`, so
every field here has a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from healthpipe import constants as c
from healthpipe.domain.documents.analysis import AnalysisKeys, AnalystProvenance, SeverityCounts
from healthpipe.domain.documents.base import Counts, Document, Number
from healthpipe.domain.insights import Usage


class SummaryRows(Document):
    input: int = 0
    valid: int = 0
    rejected: int = 0


class HeadlineCounts(Document):
    """Findings as the report counts them."""

    total: int = 0
    by_severity: Counts = Field(default_factory=dict)
    by_kind: Counts = Field(default_factory=dict)


class EpisodeCounts(Document):
    total: int = 0
    by_kind: Counts = Field(default_factory=dict)


class StoredFinding(Document):
    """A top finding keyed by the participant's pseudonym."""

    user_key: str
    source_row: int | None = None
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


class AnalysisSummary(Document):
    """The bounded summary of one analysis (the full document stays in the object store)."""

    SCHEMA_VERSION: ClassVar[str] = c.SCHEMA_VERSION

    dataset_id: str
    created_at: str = ""
    created_epoch: float = 0.0
    source_key: str = ""
    rows: SummaryRows = SummaryRows()
    reject_reasons: Counts = Field(default_factory=dict)
    readings: int = 0
    users: int = 0
    users_flagged: int = 0
    anomalies: HeadlineCounts = HeadlineCounts()
    top_anomalies: list[StoredFinding] = Field(default_factory=list)
    episodes: EpisodeCounts = EpisodeCounts()
    worst_severity: str = "none"
    risk_level: str = ""
    summary: str = ""
    analyst: AnalystProvenance | None = None
    usage: Usage | None = None
    keys: AnalysisKeys | None = None
    trimmed: bool | None = Field(default=None, alias="_trimmed")
    dropped: list[str] | None = Field(default=None, alias="_dropped")


class FlaggedUser(Document):
    """A participant with findings, stored under `user#<pseudonym>`."""

    item_key: str
    kind: str = "user"
    user_key: str
    readings: int = 0
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
    trimmed: bool | None = Field(default=None, alias="_trimmed")
    dropped: list[str] | None = Field(default=None, alias="_dropped")


class FlaggedEpisode(Document):
    """An episode, stored under `episode#<nnnn>`. `kind` is the finding kind of the episode
    (as it always was: the episode's own `kind` overwrote the item kind `episode`)."""

    item_key: str
    kind: str
    user_key: str
    metric: str = ""
    severity: str = ""
    readings: int = 0
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
    trimmed: bool | None = Field(default=None, alias="_trimmed")
    dropped: list[str] | None = Field(default=None, alias="_dropped")


FlaggedItem = FlaggedUser | FlaggedEpisode


def flagged_item(doc: Mapping[str, object]) -> FlaggedItem:
    """A stored flagged item as its model: `item_key` `user#…` is a participant."""
    if str(doc.get("item_key", "")).startswith("user#"):
        return FlaggedUser.model_validate(doc)
    return FlaggedEpisode.model_validate(doc)

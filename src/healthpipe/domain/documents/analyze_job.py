"""The documents of the grouped analysis on AWS (the Step Functions state machine of
infra/terraform/statemachine/grouped_analyze.asl.json.tftpl, docs/deploy.md "Large files"):
what Prepare hands to every later state, and what each state leaves in S3 for the next.
The analysis itself is the local executor's (`dataops/analysis/buckets.py`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from healthpipe.domain.documents.base import Complete, JsonObject
from healthpipe.domain.documents.events import ProcessingComplete
from healthpipe.domain.documents.history import VitalBaseline
from healthpipe.domain.documents.trend import Trends


class AnalyzeRequest(Complete):
    """The input of Prepare: the Data Processing Complete event that started the execution,
    the execution's id (the owner of the ledger claim) and the most readings of a group
    (Terraform's `grouped_analyze_group_rows`)."""

    event: JsonObject
    execution: str
    group_rows: int = Field(ge=1)


class AnalyzeJob(Complete):
    """One processed file's run through the state machine. `outcome`: `prepared` (the groups
    are in `groups_key`), `skipped` (the file was analysed before, or another execution is
    analysing it: a finished analysis's event is published again). `claim_owner` (the
    execution) holds the ledger claim `analyze:<dataset_id>` from Prepare to Merge."""

    schema_version: int = 1
    outcome: Literal["prepared", "skipped"]
    bucket: str
    dataset_id: str
    correlation_id: str
    claim_owner: str = ""
    detail: ProcessingComplete
    work_prefix: str = ""
    groups_key: str = ""  # a JSON array of `AnalysisGroup`: the Distributed Map's ItemReader
    groups: int = Field(default=0, ge=0)
    conflicting_key: str | None = None  # every group's conflicting rows, with their group
    timings: dict[str, int] = Field(default_factory=dict)


class AnalysisGroup(Complete):
    """One group of participants: its index and the keys of its rows (Parquet files)."""

    index: int = Field(ge=0)
    readings: list[str]


class GroupStep(Complete):
    """The input of one item of the Map over the groups."""

    job: AnalyzeJob
    group: AnalysisGroup


class AnalyzeStep(Complete):
    """The input of Merge."""

    job: AnalyzeJob


class PreparedAnalysis(Complete):
    """What Prepare leaves for Merge (`work/analyze/<dataset>/prepared.json`): the file's own
    aggregates (`split_participants`', in the tagged JSON of `stages.grouped_analyze`), the
    trends, by raw id the baselines each participant's findings used (None: no history
    yet), and how many of this file's day histograms are stored beside it and its first day."""

    aggregates: JsonObject
    trends: Trends | None = None
    known: dict[str, dict[str, VitalBaseline] | None] = Field(default_factory=dict)
    histograms: int = Field(default=0, ge=0)
    history_start: date | None = None  # the file's first reading day (what to prune from)
    started_epoch: float = 0.0


class GroupAnalyzed(Complete):
    """What one group returns besides its files (`buckets.GroupResult`), in S3 for Merge:
    the readings it flagged, its severity facts (tagged JSON) and when each participant of
    its high list was first high."""

    index: int = Field(ge=0)
    flagged: int = Field(ge=0)
    severity: JsonObject
    first_high: dict[str, datetime | None] = Field(default_factory=dict)


class Merged(Complete):
    """Merge's result: the stored analysis."""

    outcome: Literal["done"] = "done"
    dataset_id: str
    analysis_key: str
    anomalies: int = Field(ge=0)


class AnalyzeReleaseRequest(Complete):
    """The input of Release (the failure branch): the job and the failed execution's id."""

    job: AnalyzeJob
    execution: str


class AnalyzeReleased(Complete):
    """Release's result: `released` when the execution held the claim, else `not_held`."""

    outcome: Literal["released", "not_held"]
    dataset_id: str

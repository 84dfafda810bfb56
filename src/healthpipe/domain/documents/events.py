"""The `detail` of each pipeline event: what one stage tells the next.

Every detail carries `schema_version`, `correlation_id`, `dataset_id` and `status` (in that
order), then its own fields. An event's envelope (`events.Event`) keeps the detail as JSON;
a stage builds one of these and sends `as_json()`, the next stage reads it back with
`model_validate`. A replayed completion adds `replay_of` (kept as an extra key).
"""

from __future__ import annotations

from healthpipe import constants as c
from healthpipe.domain.documents.base import Document
from healthpipe.domain.documents.summary import SummaryRows


class EventDetail(Document):
    schema_version: str = c.SCHEMA_VERSION
    correlation_id: str = ""
    dataset_id: str | None = None
    status: str = ""


class ProcessingComplete(EventDetail):
    """Ingest split a file: where the processed (and rejected) rows are."""

    manifest_key: str
    processed_key: str
    processed_csv_key: str | None = None
    rejected_key: str | None = None
    rows: SummaryRows | None = None


class ProcessingFailed(EventDetail):
    """A file (or a stage run) could not be used; `error` says why in one line."""

    manifest_key: str | None = None
    error: str = ""
    error_code: str = ""
    source_key: str | None = None
    retryable: bool | None = None


class AnalysisComplete(EventDetail):
    """Analyze stored an analysis: where it is and what it found."""

    analysis_key: str | None = None
    manifest_key: str | None = None
    worst_severity: str = "none"
    anomalies: int = 0
    episodes: int = 0
    risk_level: str = ""

"""The manifest ingest writes under `manifests/<dataset_id>.json`: what came in, what came out."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from healthpipe import constants as c
from healthpipe.domain.documents.base import Counts, Document


class Source(Document):
    """The raw object a dataset was made from."""

    bucket: str = ""
    key: str
    version_id: str | None = None
    sha256: str = ""
    size: int = 0


class RowCounts(Document):
    input: int = 0
    valid: int = 0
    rejected: int = 0
    by_reason: Counts = Field(default_factory=dict)


class Outputs(Document):
    """Object keys of the split; all absent for a rejected file."""

    processed_csv: str | None = None
    processed_parquet: str | None = None
    rejected_csv: str | None = None


class TimeRange(Document):
    start: str | None = None
    end: str | None = None


class FileError(Document):
    code: str
    reason: str


class Manifest(Document):
    """`status` is `processed` (with `columns`, `users`, `time_range`) or `rejected` (with
    `error`, empty `counts` and `outputs`)."""

    schema_version: str = c.SCHEMA_VERSION
    dataset_id: str = ""
    correlation_id: str = ""
    source: Source
    rules_profile: str | None = None
    ingested_at: str = ""
    status: Literal["processed", "rejected"] | None = None
    error: FileError | None = None
    counts: RowCounts = RowCounts()
    outputs: Outputs = Outputs()
    columns: list[str] | None = None
    users: int | None = None
    time_range: TimeRange | None = None
    timings: Counts = Field(default_factory=dict)
    # erasures (`healthpipe forget`) that removed rows of this dataset: `counts` are then
    # net of them, and `source.sha256` stays the uploaded file's (docs/privacy.md)
    erasures: int = 0

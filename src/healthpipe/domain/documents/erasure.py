"""The erasure record `healthpipe forget --apply` writes under `erasures/`: who (by pseudonym
only, never the id), when, and how much was removed from each store."""

from __future__ import annotations

from pydantic import Field

from healthpipe import constants as c
from healthpipe.domain.documents.base import Counts, Document

ERASURES_PREFIX = "erasures/"


class ErasureRecord(Document):
    schema_version: str = c.SCHEMA_VERSION
    pseudonym: str
    erased_at: str
    runtime: str = "local"
    # rows removed per row store (raw, processed_csv, processed_parquet, rejected, findings,
    # lake, other)
    rows_removed: Counts = Field(default_factory=dict)
    # files rewritten per row store
    files_rewritten: Counts = Field(default_factory=dict)
    # derived copies made anew or deleted: analyses, reports, manifests, emails, versions …
    derived: Counts = Field(default_factory=dict)
    # the datasets that held the participant's rows (content ids, not personal data)
    datasets: list[str] = Field(default_factory=list)


def erasure_key(label: str, stamp: str) -> str:
    """`erasures/<UTC stamp>-<pseudonym>.json` (a key holds a pseudonym, never an id)."""
    return f"{ERASURES_PREFIX}{stamp}-{label}.json"

"""Identities and object keys: dataset ids, correlation ids, pseudonyms, output keys."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from healthpipe import constants as c

SAFE_STEM = re.compile(r"[^A-Za-z0-9._-]+")
# Each format under its own prefix, partitioned by ingestion day (`dt=YYYY-MM-DD/`), so a
# table (the Glue table in infra/terraform/analytics.tf) can point at the Parquet alone.
PROCESSED_PARQUET_PREFIX = f"{c.PROCESSED_PREFIX}parquet/"
PROCESSED_CSV_PREFIX = f"{c.PROCESSED_PREFIX}csv/"
# The lake (docs/lake.md): every analysed file's valid readings again, partitioned by
# participant bucket and reading day; written by analyze, read by `healthpipe query` and Athena.
LAKE_PREFIX = "lake/"
LAKE_READINGS_PREFIX = f"{LAKE_PREFIX}readings/"


def dataset_id_for(sha256_hex: str) -> str:
    """Content identity: the first 16 hex characters of the file's SHA-256."""
    return sha256_hex[:16]


def correlation_id_for(bucket: str, key: str, version_id: str | None) -> str:
    return f"{bucket}/{key}@{version_id or 'null'}"


def ledger_key(stage: str, identity: str) -> str:
    return f"{stage}:{identity}"


PSEUDONYM_HEX_CHARS = 16  # 64 bits: a collision is unlikely below ~10^9 participants


def pseudonym(user_id: str, secret: str) -> str:
    """A stable, non-reversible label for a user: `P-` and the first 64 bits of the
    HMAC-SHA256 of the id under the workspace's (or deployment's) secret.

    An authorised operator who holds the secret maps an id to its pseudonym by recomputing
    this (`healthpipe pseudonym ID`); there is no stored table from pseudonym back to id."""
    digest = hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return f"P-{digest[:PSEUDONYM_HEX_CHARS]}"


PARTICIPANT_BUCKETS = 64


def bucket_of_pseudonym(label: str) -> int:
    """The participant bucket (0-63) of a pseudonym: its HMAC bits modulo PARTICIPANT_BUCKETS
    (uniform, because the HMAC is)."""
    return int(label.removeprefix("P-"), 16) % PARTICIPANT_BUCKETS


def participant_bucket(user_id: str, secret: str) -> int:
    """The lake's participant bucket of a user (`pb=NN`): the bucket of their pseudonym, so
    one participant's readings are in one bucket of each day and the bucket says nothing the
    pseudonym does not."""
    return bucket_of_pseudonym(pseudonym(user_id, secret))


def lake_readings_key(bucket: int, day: str, dataset_id: str) -> str:
    """A file's readings of one participant bucket and reading day: no id in the key, only
    the bucket, the day and the content id (a re-analysis overwrites its own files)."""
    return f"{LAKE_READINGS_PREFIX}pb={bucket:02d}/dt={day}/{dataset_id}.parquet"


def is_ingestible(key: str) -> bool:
    lowered = key.lower()
    return key.startswith(c.RAW_PREFIX) and lowered.endswith(c.ACCEPTED_SUFFIXES)


def file_stem(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    for suffix in (".csv.gz", ".csv", ".gz"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return (SAFE_STEM.sub("_", name).strip("._") or "data")[:80]


@dataclass(frozen=True)
class DatasetKeys:
    """Where one dataset's outputs live in the bucket. Unique per content (dataset_id)."""

    dataset_id: str
    stem: str
    day: str  # YYYY-MM-DD of ingestion

    @property
    def processed_csv(self) -> str:
        return f"{PROCESSED_CSV_PREFIX}dt={self.day}/{self.stem}-{self.dataset_id}.csv"

    @property
    def processed_parquet(self) -> str:
        return f"{PROCESSED_PARQUET_PREFIX}dt={self.day}/{self.stem}-{self.dataset_id}.parquet"

    @property
    def rejected_csv(self) -> str:
        return f"{c.REJECTED_PREFIX}dt={self.day}/{self.stem}-{self.dataset_id}_rejected.csv"

    @property
    def manifest(self) -> str:
        return manifest_key(self.dataset_id)


def manifest_key(dataset_id: str) -> str:
    return f"{c.MANIFESTS_PREFIX}{dataset_id}.json"


def analysis_key(dataset_id: str) -> str:
    return f"{c.ANALYZED_PREFIX}{dataset_id}.json"


def anomalies_key(dataset_id: str) -> str:
    return f"{c.ANALYZED_PREFIX}{dataset_id}_anomalies.parquet"


def report_key(dataset_id: str) -> str:
    return f"{c.REPORTS_PREFIX}{dataset_id}.html"

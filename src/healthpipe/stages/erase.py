"""Erasure of one participant's rows from every stored copy, through the ports.

Not an event-driven stage: `healthpipe forget` calls it (docs/privacy.md). It works on any
`ObjectStore` (a folder, or S3 with its noncurrent versions) and the ledger:

- `raw/` uploads are rewritten without the participant's records. The ledger keeps the
  original's `ingest:<sha256>` claim, so the original uploaded again is still recognised and
  skipped; the rewritten copy's own hash is claimed as completed first (an erasure marker
  with no event), so that its upload (an S3 `Object Created`) is skipped too, never
  ingested as a new dataset.
- processed CSVs and rejected CSVs lose the participant's records (bytes of the others
  unchanged); processed Parquet (every file under the prefix, whatever its partitions) and
  the anomalies Parquet lose the rows whose `user_id` is theirs; so does any other CSV or
  Parquet file in the bucket outside manifests/, reports/ and erasures/ (`other`: a chunked
  ingest's work files, a copy someone left), so a new row store is never missed.
- manifests of the datasets touched get their counts lowered by what was removed.
- a store with versions deletes the older versions of every object it rewrote.

Counts only leave this module: no id, no value, no file name.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from healthpipe import constants as c
from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.erase_rows import (
    cells,
    count_parquet_rows,
    distinct_user_ids,
    filter_csv,
    filter_parquet,
)
from healthpipe.dataops.work_folders import work_folder
from healthpipe.domain.documents import Manifest
from healthpipe.domain.documents.erasure import ERASURES_PREFIX
from healthpipe.domain.identity import (
    LAKE_READINGS_PREFIX,
    PROCESSED_CSV_PREFIX,
    PROCESSED_PARQUET_PREFIX,
    ledger_key,
    manifest_key,
    pseudonym,
)
from healthpipe.ports import Ledger, ObjectStore, sha256_file
from healthpipe.stages.base import run_once

logger = logging.getLogger("healthpipe.erase")

RAW = "raw"
PROCESSED_CSV = "processed_csv"
PROCESSED_PARQUET = "processed_parquet"
REJECTED = "rejected"
FINDINGS = "findings"
LAKE = "lake"
OTHER = "other"
# Each store of rows, by the prefix of its keys (the first that matches names the store).
ROW_STORES: dict[str, str] = {
    RAW: c.RAW_PREFIX,
    PROCESSED_CSV: PROCESSED_CSV_PREFIX,
    PROCESSED_PARQUET: PROCESSED_PARQUET_PREFIX,
    REJECTED: c.REJECTED_PREFIX,
    FINDINGS: c.ANALYZED_PREFIX,
    LAKE: LAKE_READINGS_PREFIX,  # analyze's copy, by participant bucket and reading day
    OTHER: "",  # a row file anywhere else in the bucket (a chunked ingest's work files …)
}
# Documents, not rows: what is derived from the rows is made again by `healthpipe forget`.
NOT_ROWS = (c.MANIFESTS_PREFIX, c.REPORTS_PREFIX, ERASURES_PREFIX)
DATASET_OF_KEY = re.compile(r"[-/]([0-9a-f]{16})(?:_rejected|_anomalies)?\.(?:csv|parquet)$")
CSV_SUFFIXES = (".csv", ".csv.gz")
BUCKET_PARTITION = re.compile(r"/pb=(\d+)/")
ERASED_COPY = "erased_copy"


def dataset_of(key: str) -> str | None:
    """The dataset id in an output key (`…-<id>.csv`, `…_rejected.csv`, `<id>_anomalies…`)."""
    found = DATASET_OF_KEY.search(key)
    return found.group(1) if found else None


def may_hold(key: str, bucket: int | None) -> bool:
    """False when the key is in a participant-bucket partition (`/pb=NN/`) other than
    `bucket`; True otherwise (no partition, or no bucket given)."""
    found = BUCKET_PARTITION.search(key)
    return bucket is None or found is None or int(found.group(1)) == bucket


def row_store_of(key: str) -> str | None:
    """The row store a key belongs to, or None when it holds no rows (a document, a page)."""
    lowered = key.lower()
    if key.startswith(NOT_ROWS) or not lowered.endswith((*CSV_SUFFIXES, ".parquet")):
        return None
    if key.startswith(c.ANALYZED_PREFIX):
        return FINDINGS if lowered.endswith("_anomalies.parquet") else None
    return next(name for name, prefix in ROW_STORES.items() if key.startswith(prefix))


@dataclass
class Erasure:
    """What an erasure removed (or, in a dry run, would remove): counts, and the datasets
    whose derived documents (analysis, report) must be made again."""

    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROW_STORES, 0))
    files: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROW_STORES, 0))
    datasets: set[str] = field(default_factory=set)
    manifests: int = 0
    versions_deleted: int = 0
    # per dataset: valid rows, rejected rows and the reasons of those, for its manifest
    valid_by_dataset: Counter[str] = field(default_factory=Counter)
    rejected_by_dataset: Counter[str] = field(default_factory=Counter)
    reasons_by_dataset: dict[str, Counter[str]] = field(default_factory=dict)


def find_user_id(
    label: str, secret: str, store: ObjectStore, workdir: Path, limits: EngineLimits
) -> str | None:
    """The participant id whose pseudonym is `label`, found among the ids of the processed
    readings (there is no table from pseudonym back to id), or None."""
    with work_folder(workdir, "erase") as folder:
        for key in store.list_keys(PROCESSED_PARQUET_PREFIX):
            if not key.endswith(".parquet"):
                continue
            with tempfile.TemporaryDirectory(dir=folder) as tmp:  # one file at a time
                local = store.materialize(key, Path(tmp))
                for user_id in distinct_user_ids(local.path, limits):
                    if pseudonym(user_id, secret) == label:
                        return user_id
    return None


def erase_rows(
    user_id: str,
    store: ObjectStore,
    ledger: Ledger,
    workdir: Path,
    limits: EngineLimits,
    *,
    apply: bool,
    bucket: int | None = None,
) -> Erasure:
    """Remove (with `apply`; else count) the participant's rows from every row store. With
    `bucket`, the participant's lake bucket, files of another `pb=NN` partition are skipped
    unread: they cannot hold the participant (docs/lake.md)."""
    erasure = Erasure()
    with work_folder(workdir, "erase") as folder:
        for key in store.list_keys(""):
            name = row_store_of(key)
            if name is not None and may_hold(key, bucket):
                _erase_from(name, key, user_id, store, ledger, folder, limits, erasure, apply)
    if apply:
        for dataset_id in sorted(erasure.datasets):
            erasure.manifests += _lower_manifest(store, dataset_id, erasure)
    logger.info(
        "erasure applied" if apply else "erasure dry run",
        extra={f"rows_{k}": v for k, v in erasure.rows.items()}
        | {"datasets": len(erasure.datasets), "versions_deleted": erasure.versions_deleted},
    )
    return erasure


def _erase_from(
    name: str,
    key: str,
    user_id: str,
    store: ObjectStore,
    ledger: Ledger,
    folder: Path,
    limits: EngineLimits,
    erasure: Erasure,
    apply: bool,
) -> None:
    dataset_id = dataset_of(key)
    with tempfile.TemporaryDirectory(dir=folder) as tmp_name:  # one file at a time
        tmp = Path(tmp_name)
        local = store.materialize(key, tmp)
        target = tmp / ("erased.parquet" if key.endswith(".parquet") else "erased")
        if key.endswith(".parquet"):
            removed = count_parquet_rows(local.path, user_id, limits)
            if removed and apply:
                filter_parquet(local.path, target, user_id, limits)
        else:
            reasons: Counter[str] = Counter()

            def count_reasons(header: bytes, record: bytes) -> None:
                for reason in cells(header, record).get("reject_reason", "").split(";"):
                    if reason:
                        reasons[reason] += 1

            removed = filter_csv(
                local.path,
                target if apply else None,
                user_id,
                gzipped=key.lower().endswith(".gz"),
                on_removed=count_reasons if name == REJECTED else None,
            )
            if dataset_id and name == REJECTED:
                erasure.rejected_by_dataset[dataset_id] += removed
                erasure.reasons_by_dataset.setdefault(dataset_id, Counter()).update(reasons)
        if not removed:
            return
        erasure.rows[name] += removed
        erasure.files[name] += 1
        if dataset_id and name != RAW:
            erasure.datasets.add(dataset_id)
            if name == PROCESSED_PARQUET:
                erasure.valid_by_dataset[dataset_id] += removed
        if not apply:
            return
        if name == RAW:
            _mark_erased_copy(ledger, target)
        store.put_file(key, target, consume=True)
    erasure.versions_deleted += store.delete_old_versions(key)


def _mark_erased_copy(ledger: Ledger, copy: Path) -> None:
    """Claim the rewritten upload's hash as completed, with no event to replay: a delivery
    of it (its S3 `Object Created`, a `run` over raw/) is skipped, never a new dataset."""
    sha256, _ = sha256_file(copy)
    marker = {ERASED_COPY: True}
    run_once(
        ledger,
        ledger_key("ingest", sha256),
        lambda: marker,
        save=lambda done: done,
        replay=lambda stored: stored,
        now=time.time(),
    )


def _lower_manifest(store: ObjectStore, dataset_id: str, erasure: Erasure) -> int:
    """Lower a touched dataset's manifest counts by the rows removed; 1 when rewritten."""
    key = manifest_key(dataset_id)
    if not store.exists(key):
        return 0
    manifest = store.get_document(key, Manifest)
    counts = manifest.counts
    valid, rejected = erasure.valid_by_dataset[dataset_id], erasure.rejected_by_dataset[dataset_id]
    counts.valid = max(0, counts.valid - valid)
    counts.rejected = max(0, counts.rejected - rejected)
    counts.input = max(0, counts.input - valid - rejected)
    for reason, n in erasure.reasons_by_dataset.get(dataset_id, Counter()).items():
        left = counts.by_reason.get(reason, 0) - n
        if left > 0:
            counts.by_reason[reason] = left
        else:
            counts.by_reason.pop(reason, None)
    if manifest.users and valid:
        manifest.users -= 1
    manifest.erasures += 1
    store.put_document(key, manifest, indent=2)  # as ingest writes it
    store.delete_old_versions(key)
    return 1

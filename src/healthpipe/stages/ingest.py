"""Ingest: validate a raw CSV and split it into processed and rejected rows, once per content."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from healthpipe import constants as c
from healthpipe import progress
from healthpipe.dataops.chunked import validate_chunked
from healthpipe.dataops.header import read_header, reads_more_than
from healthpipe.dataops.profiles import load_profile
from healthpipe.dataops.validation import SplitPaths, ValidationResult, validate_file
from healthpipe.dataops.work_folders import work_folder
from healthpipe.domain.documents import (
    FileError,
    Manifest,
    Outputs,
    ProcessingComplete,
    ProcessingFailed,
    RowCounts,
    Source,
    SummaryRows,
    TimeRange,
)
from healthpipe.domain.identity import (
    DatasetKeys,
    correlation_id_for,
    dataset_id_for,
    file_stem,
    is_ingestible,
    ledger_key,
    manifest_key,
)
from healthpipe.errors import InputError
from healthpipe.events import Event, object_of, utc_now
from healthpipe.ports import LocalObject
from healthpipe.stages.base import Ports, StageResult, log_event, run_claimed, timed
from healthpipe.stages.engine import engine_limits

STAGE = "ingest"
MB = 1024 * 1024
logger = logging.getLogger("healthpipe.ingest")


def ingest(event: Event, ports: Ports) -> StageResult:
    bucket, key, version = object_of(event)
    if not key.startswith(c.RAW_PREFIX):
        log_event(logger, "ignored object outside raw/", key=key)
        return StageResult("ignored", info={"key": key})
    if not is_ingestible(key):
        return _reject_unsupported(bucket or ports.store.bucket, key, version, ports)
    started = time.perf_counter()
    timings: dict[str, int] = {}
    with work_folder(ports.workdir, "ingest") as workdir:
        progress.step("hash")
        with timed(timings, "fetch_hash_ms"):
            obj = ports.store.materialize(key, workdir, version)
        version = version or obj.version_id
        dataset_id = dataset_id_for(obj.sha256)
        correlation_id = correlation_id_for(bucket or ports.store.bucket, key, version)
        return run_claimed(
            ports,
            ledger_key(STAGE, obj.sha256),
            STAGE,
            lambda: _process(
                obj, dataset_id, correlation_id, bucket, ports, workdir, timings, started
            ),
            logger=logger,
            context={"dataset_id": dataset_id},
            save=lambda result: result.info | {"event": result.events[0].detail},
            replay=lambda stored: _replay(stored, correlation_id),
            log_fields={"correlation_id": correlation_id},
        )


def _replay(result: dict[str, Any], correlation_id: str) -> list[Event]:
    """Re-emit the completion event of a finished ingest (its downstream is idempotent)."""
    detail = result.get("event")
    if not detail:
        return []
    detail_type = (
        c.PROCESSING_COMPLETE if detail.get("status") == "success" else c.PROCESSING_FAILED
    )
    return [
        Event(
            c.SOURCE_INGESTOR,
            detail_type,
            {**detail, "replay_of": detail.get("correlation_id"), "correlation_id": correlation_id},
        )
    ]


def _process(
    obj: LocalObject,
    dataset_id: str,
    correlation_id: str,
    bucket: str,
    ports: Ports,
    workdir: Path,
    timings: dict[str, int],
    started: float,
) -> StageResult:
    keys = DatasetKeys(dataset_id, file_stem(obj.key), utc_now().strftime("%Y-%m-%d"))
    profile = load_profile(ports.ingest_settings.rules)
    source = Source(
        bucket=bucket or ports.store.bucket,
        key=obj.key,
        version_id=obj.version_id,
        sha256=obj.sha256,
        size=obj.size,
    )
    manifest = Manifest(
        dataset_id=dataset_id,
        correlation_id=correlation_id,
        source=source,
        rules_profile=profile.name,
        ingested_at=utc_now().isoformat(timespec="seconds"),
    )
    out = SplitPaths(
        workdir / "processed.csv", workdir / "processed.parquet", workdir / "rejected.csv"
    )
    try:
        progress.step("validate")
        with timed(timings, "validate_ms"):
            header = read_header(obj.path)
            limits = engine_limits(ports.ingest_settings.engine, workdir)
            now_iso = utc_now().isoformat()
            chunked = ports.ingest_settings.chunked
            # routed by the CSV bytes the engine reads (a gzip's uncompressed size)
            if chunked is not None and reads_more_than(
                obj.path, chunked.threshold_mb * MB, gzipped=header.gzipped
            ):
                validation = validate_chunked(
                    obj.path,
                    header,
                    profile,
                    out,
                    now_iso=now_iso,
                    limits=limits,
                    chunk_bytes=chunked.chunk_mb * MB,
                    sha256=obj.sha256,
                    workers=chunked.workers,
                )
            else:
                validation = validate_file(
                    obj.path, header, profile, out, now_iso=now_iso, limits=limits
                )
    except InputError as exc:
        return _reject_file(exc, manifest, ports, timings, started)
    with timed(timings, "upload_ms"):
        store = ports.store
        store.put_file(keys.processed_csv, out.processed_csv, "text/csv", consume=True)
        store.put_file(
            keys.processed_parquet,
            out.processed_parquet,
            "application/vnd.apache.parquet",
            consume=True,
        )
        if validation.rows_rejected:
            store.put_file(keys.rejected_csv, out.rejected_csv, "text/csv", consume=True)
    timings["total_ms"] = int((time.perf_counter() - started) * 1000)
    outputs = Outputs(
        processed_csv=keys.processed_csv,
        processed_parquet=keys.processed_parquet,
        rejected_csv=keys.rejected_csv if validation.rows_rejected else None,
    )
    manifest.status = "processed"
    manifest.counts = _counts(validation)
    manifest.outputs = outputs
    manifest.columns = validation.columns
    manifest.users = validation.users
    manifest.time_range = TimeRange(start=validation.first_event, end=validation.last_event)
    manifest.timings = timings
    ports.store.put_document(keys.manifest, manifest, indent=2)
    _record_metrics(ports, validation)
    ports.metrics.add("StageDurationMs", timings["total_ms"], stage=STAGE, unit="Milliseconds")
    log_event(
        logger,
        "ingested",
        dataset_id=dataset_id,
        correlation_id=correlation_id,
        rows_input=validation.rows_input,
        rows_valid=validation.rows_valid,
        rows_rejected=validation.rows_rejected,
        duration_ms=timings["total_ms"],
    )
    detail = ProcessingComplete(
        correlation_id=correlation_id,
        dataset_id=dataset_id,
        status="success",
        manifest_key=keys.manifest,
        processed_key=keys.processed_parquet,
        processed_csv_key=keys.processed_csv,
        rejected_key=outputs.rejected_csv,
        rows=SummaryRows(
            input=validation.rows_input,
            valid=validation.rows_valid,
            rejected=validation.rows_rejected,
        ),
    ).as_json()
    return StageResult(
        "done",
        [Event(c.SOURCE_INGESTOR, c.PROCESSING_COMPLETE, detail)],
        {
            "status": "processed",
            "dataset_id": dataset_id,
            "rows": _rows(validation),
            "manifest_key": keys.manifest,
        },
    )


def _rows(v: ValidationResult) -> dict[str, int]:
    return {"input": v.rows_input, "valid": v.rows_valid, "rejected": v.rows_rejected}


def _counts(v: ValidationResult) -> RowCounts:
    return RowCounts(
        input=v.rows_input, valid=v.rows_valid, rejected=v.rows_rejected, by_reason=v.reasons
    )


def _record_metrics(ports: Ports, v: ValidationResult) -> None:
    m = ports.metrics
    m.add("FilesIngested", 1, stage=STAGE)
    m.add("RowsInput", v.rows_input, stage=STAGE)
    m.add("RowsValid", v.rows_valid, stage=STAGE)
    m.add("RowsRejected", v.rows_rejected, stage=STAGE)
    m.add(
        "RejectRatio",
        v.rows_rejected / v.rows_input if v.rows_input else 0.0,
        stage=STAGE,
        unit="None",
    )


def _reject_file(
    exc: InputError,
    manifest: Manifest,
    ports: Ports,
    timings: dict[str, int],
    started: float,
) -> StageResult:
    """The file cannot be used: it stays in raw/, a rejected manifest says why."""
    timings["total_ms"] = int((time.perf_counter() - started) * 1000)
    dataset_id = manifest.dataset_id
    manifest.status = "rejected"
    manifest.error = FileError(code=exc.code, reason=exc.reason)
    manifest.counts = RowCounts(input=0, valid=0, rejected=0, by_reason={})
    manifest.outputs = Outputs()
    manifest.timings = timings
    key = manifest_key(dataset_id)
    ports.store.put_document(key, manifest, indent=2)
    ports.metrics.add("FilesRejected", 1, stage=STAGE)
    log_event(
        logger,
        "file rejected",
        dataset_id=dataset_id,
        code=exc.code,
        correlation_id=manifest.correlation_id,
    )
    detail = ProcessingFailed(
        correlation_id=manifest.correlation_id,
        dataset_id=dataset_id,
        status="rejected",
        manifest_key=key,
        error=exc.reason,
        error_code=exc.code,
        source_key=manifest.source.key,
    ).as_json()
    return StageResult(
        "rejected",
        [Event(c.SOURCE_INGESTOR, c.PROCESSING_FAILED, detail)],
        {"status": "rejected", "dataset_id": dataset_id, "error": exc.reason, "manifest_key": key},
    )


UNSUPPORTED = "unsupported_file_type"


def unsupported_suffix(key: str) -> str:
    """The suffix an unsupported upload is named by in its failure (`.txt`; `none` when the
    name has none), at most 16 characters: the file type, never the rest of the name."""
    name = key.rsplit("/", 1)[-1]
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        return "none"
    return f".{suffix[:15]}"


def _reject_unsupported(bucket: str, key: str, version: str | None, ports: Ports) -> StageResult:
    """An upload under raw/ of a kind ingest does not read (not .csv/.csv.gz, any case): it
    is not downloaded and stays where it is; its ledger record (`ingest:object:<correlation
    id>`, completed as rejected) and `Data Processing Failed` say why."""
    correlation_id = correlation_id_for(bucket, key, version)
    reason = f"unsupported file type: {unsupported_suffix(key)} (expected .csv or .csv.gz)"

    def reject() -> StageResult:
        ports.metrics.add("FilesRejected", 1, stage=STAGE)
        log_event(logger, "file rejected", code=UNSUPPORTED, correlation_id=correlation_id, key=key)
        detail = ProcessingFailed(
            correlation_id=correlation_id,
            dataset_id=None,
            status="rejected",
            error=reason,
            error_code=UNSUPPORTED,
            source_key=key,
            retryable=False,
        ).as_json()
        return StageResult(
            "rejected",
            [Event(c.SOURCE_INGESTOR, c.PROCESSING_FAILED, detail)],
            {"status": "rejected", "error": reason, "error_code": UNSUPPORTED},
        )

    return run_claimed(
        ports,
        ledger_key(STAGE, f"object:{correlation_id}"),
        STAGE,
        reject,
        logger=logger,
        context={"key": key},
        save=lambda result: result.info | {"event": result.events[0].detail},
        replay=lambda stored: _replay(stored, correlation_id),
        log_fields={"correlation_id": correlation_id},
    )

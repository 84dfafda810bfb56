"""The chunked ingest on AWS, one function per state of the Step Functions state machine
(infra/terraform/statemachine/chunked_ingest.asl.json.tftpl; docs/deploy.md, "Large files"): the
chunked engine's steps (`dataops.chunked`) over files in the object store, each run by its
own Lambda function. What a step leaves for the next is in the bucket under
`work/<dataset_id>/`; what the state machine carries is the small `ChunkJob`.

The outputs, the manifest, the ledger claim and the events are those of `stages.ingest` for
the same file: Plan claims `ingest:<sha256>` (the execution owns it until Assemble completes
it; after a failure the failure branch's Release gives it up, so the same bytes can be
uploaded again at once), Assemble publishes Data Processing Complete and the analyzer
follows as for any file.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from healthpipe import constants as c
from healthpipe.dataops.chunked.assemble import merge_reasons, rejected_in_order
from healthpipe.dataops.chunked.buckets import (
    bucket_repeats,
    chunk_repeats,
    keys_name,
    repeats_name,
    write_key_buckets,
)
from healthpipe.dataops.chunked.chunk_validate import stage_chunk
from healthpipe.dataops.chunked.plan import (
    Scanned,
    StreamScan,
    gunzip_blocks,
    lf_blocks,
    plan_of,
)
from healthpipe.dataops.chunked.repeats import rows_before
from healthpipe.dataops.chunked.split import split_chunk
from healthpipe.dataops.header import GZIP_MAGIC, SNIFF_BYTES, Header, read_header
from healthpipe.dataops.parquet_parts import merge_parquet_parts
from healthpipe.dataops.profiles import load_profile
from healthpipe.dataops.rejected_merge import merge_rejected_parts
from healthpipe.dataops.validation.common import output_columns
from healthpipe.dataops.validation.types import SplitPaths
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
from healthpipe.domain.documents.chunk_job import (
    Assembled,
    BucketRepeats,
    ChunkJob,
    ChunkStep,
    JobStep,
    ReduceStep,
    Released,
    ReleaseRequest,
    RowOffsets,
)
from healthpipe.domain.documents.chunk_plan import Chunk, ChunkSplit, StagedChunk
from healthpipe.domain.identity import (
    DatasetKeys,
    correlation_id_for,
    dataset_id_for,
    file_stem,
    is_ingestible,
    ledger_key,
    manifest_key,
)
from healthpipe.errors import InputError, PermanentError
from healthpipe.events import Event, object_of, utc_now
from healthpipe.ports import LedgerRecord, ObjectStore
from healthpipe.stages.base import ExecutionClaim, Ports, StageResult, log_event
from healthpipe.stages.engine import engine_limits

STAGE = "ingest"  # the same claim, metrics and events as the single-file ingest
PARQUET = "application/vnd.apache.parquet"
logger = logging.getLogger("healthpipe.ingest.chunked")


# --- keys under work/<dataset_id>/ -----------------------------------------------------------
def chunk_prefix(job: ChunkJob, index: int) -> str:
    return f"{job.work_prefix}chunk-{index:05d}/"


def part_key(job: ChunkJob, index: int, name: str) -> str:
    return chunk_prefix(job, index) + name


# Plan's record, per execution, of the claim it takes (the job as planned so far): what the
# failure branch after a failed Plan releases (the job never reached the state machine)
EXECUTIONS_PREFIX = f"{c.WORK_PREFIX}executions/"
UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9._=+@-]")


def execution_key(execution: str) -> str:
    """Where Plan records, for `execution` (its id, an ARN ending in the execution's name:
    unique to the state machine for 90 days, no `/` or whitespace), the claim it takes."""
    name = UNSAFE_KEY_CHARS.sub("_", execution.rsplit(":", 1)[-1]) or "execution"
    return f"{EXECUTIONS_PREFIX}{name}.json"


def forget_execution(store: ObjectStore, execution: str) -> None:
    """Delete the record Plan wrote for `execution` (every version of it), once nothing
    needs it: the execution ends (AlreadyIngested, InputRejected, after a release), or its
    job reached the state machine (Assemble: a failure after it releases from the job).
    Nothing when there is none. The roles that call it may delete under
    `work/executions/` only."""
    store.delete(execution_key(execution))


def offsets_key(job: ChunkJob) -> str:
    return f"{job.work_prefix}rows_before.json"


def repeats_key(job: ChunkJob, bucket: int) -> str:
    return job.work_prefix + repeats_name(bucket)


def _header(job: ChunkJob, ports: Ports, workdir: Path) -> Header:
    path = ports.store.download_ranges(
        job.data_key, workdir / "header.csv", [(0, job.header_bytes)]
    )
    return read_header(path)


def _permanent(exc: InputError) -> PermanentError:
    return PermanentError(f"{exc.code}: {exc.reason}")


# --- Plan ----------------------------------------------------------------------------------
@dataclass
class _Upload:
    """One streamed read of the upload: its hash, size and version; the plan's scan of its
    (uncompressed) data, or why the file cannot be used."""

    sha256: str
    size: int
    version_id: str | None
    gzipped: bool
    scanned: Scanned | None
    error: InputError | None


def _data_blocks(raw: Iterator[bytes], gzipped: bool, mixed: bool) -> Iterator[bytes]:
    blocks = gunzip_blocks(raw) if gzipped else raw
    return lf_blocks(blocks) if mixed else blocks


def _check_header(key: str, head: bytes, gzipped: bool, workdir: Path) -> None:
    """The single path's header checks on the data's first bytes (a small file: the
    header line and what `read_header` sniffs), named as the upload is for the `.gz`
    check, the uncompressed bytes of a gzip upload."""
    workdir.mkdir(parents=True, exist_ok=True)
    suffix = ".csv" if gzipped else "".join(Path(key).suffixes[-2:]).lower()
    path = workdir / f"head{suffix}"
    path.write_bytes(head)
    read_header(path)
    path.unlink()


def _read_upload(
    store: ObjectStore, key: str, version: str | None, chunk_bytes: int, workdir: Path
) -> _Upload:
    """One pass over the upload as it arrives (ranged reads of nothing, no copy on disk):
    hashed, its header checked, its data scanned for the plan's cuts (a gzip upload
    decompressed on the way). A file that cannot be used is still read to its end: its
    hash is its dataset id."""
    stream = store.stream(key, version)
    raw = iter(stream)
    first: list[bytes] = []
    for piece in raw:  # enough to tell gzip and to check the header
        first.append(piece)
        if sum(map(len, first)) >= 2:
            break
    gzipped = b"".join(first)[:2] == GZIP_MAGIC
    data = _data_blocks(itertools.chain(first, raw), gzipped, False)
    scan = StreamScan(chunk_bytes)
    error: InputError | None = None
    try:
        head: list[bytes] = []
        for block in data:
            head.append(block)
            if sum(map(len, head)) >= SNIFF_BYTES:
                break
        _check_header(key, b"".join(head), gzipped, workdir)
        for block in itertools.chain(head, data):
            scan.feed(block)
    except InputError as exc:
        error = exc
        for _ in raw:  # the rest, for the hash
            pass
    return _Upload(
        stream.sha256,
        stream.size,
        stream.version_id,
        gzipped,
        None if error else scan.result(),
        error,
    )


def plan(
    event: Event, execution: str, chunk_bytes: int, ports: Ports, *, buckets: int = 1
) -> StageResult:
    """Claim the upload's content, hash and cut it in chunks of about `chunk_bytes`, and write
    the plan, its chunk list and the list of Reduce's `buckets` hash buckets. `execution`
    (the state machine's) owns the claim. The
    upload is read as a stream (never copied to /tmp): a plain CSV of any size is planned
    in one pass; a gzip or mixed-line-ending upload is read a second time, after the
    claim, into its plain LF copy in work/ (a multipart upload as it is made)."""
    bucket, key, version = object_of(event)
    if not is_ingestible(key):
        raise PermanentError("not a raw CSV upload (raw/*.csv or raw/*.csv.gz)")
    upload = _read_upload(ports.store, key, version, chunk_bytes, ports.workdir)
    version = version or upload.version_id
    bucket = bucket or ports.store.bucket
    dataset_id = dataset_id_for(upload.sha256)
    correlation_id = correlation_id_for(bucket, key, version)
    now = utc_now()
    job = ChunkJob(
        outcome="planned",
        bucket=ports.store.bucket,
        source_key=key,
        source_version=version,
        correlation_id=correlation_id,
        dataset_id=dataset_id,
        sha256=upload.sha256,
        size=upload.size,
        claim_owner=execution,
        ingested_at=now.isoformat(timespec="seconds"),
        now_iso=now.isoformat(),
        rules_profile=ports.ingest_settings.rules,
        work_prefix=f"{c.WORK_PREFIX}{dataset_id}/",
        buckets=buckets,
    )
    claim = ExecutionClaim(ports.ledger, ledger_key(STAGE, upload.sha256), execution)
    # recorded before claiming: a Plan stopped at any point after the claim (a Lambda timeout
    # or out of memory, where the `except` below never runs) leaves what the failure branch
    # releases (`release` without a job); the release is the owner's only, so a record of a
    # claim another execution holds releases nothing
    ports.store.put_document(execution_key(execution), job)
    # Plan retried in the same execution (after a timeout that left no time to release):
    # the claim is already this execution's
    record = claim.take()
    if record is not None:
        log_event(
            logger,
            "duplicate delivery skipped",
            claim=record.status,
            dataset_id=dataset_id,
            correlation_id=correlation_id,
        )
        # the execution ends here (AlreadyIngested): no claim of its own to release
        forget_execution(ports.store, execution)
        return StageResult(
            "skipped",
            _replay(record, correlation_id),
            {"job": job.model_copy(update={"outcome": "skipped"})},
        )
    try:
        result = _plan_claimed(upload, job, ports, claim)
    except Exception:
        claim.release()
        raise
    if result.outcome == "rejected":  # the execution ends (InputRejected), its claim completed
        forget_execution(ports.store, execution)
    return result


def _plan_claimed(
    upload: _Upload, job: ChunkJob, ports: Ports, claim: ExecutionClaim
) -> StageResult:
    scanned = upload.scanned
    try:
        if upload.error is not None or scanned is None:
            raise upload.error or InputError("unreadable upload", code="not_csv")
        mixed = scanned.mixed_line_endings
        prepared = upload.gzipped or mixed
        data_key = job.source_key
        if prepared:  # a gzip or mixed-line-ending file: its plain LF copy, scanned again
            data_key = f"{job.work_prefix}data.csv"
            scan = StreamScan(scanned.cuts.chunk_bytes)
            raw = iter(ports.store.stream(job.source_key, job.source_version))

            def scanning() -> Iterator[bytes]:
                for block in _data_blocks(raw, upload.gzipped, mixed):
                    scan.feed(block)
                    yield block

            ports.store.put_stream(data_key, scanning(), "text/csv")
            scanned = scan.result()
        plan_doc = plan_of(
            scanned,
            sha256=upload.sha256,
            size=upload.size,
            gzipped=upload.gzipped,
            prepared=prepared,
            mixed=mixed,
        )
        if not plan_doc.chunks:
            raise InputError("no data rows (header only)", code="no_rows")
    except InputError as exc:
        result = _reject(exc, upload.size, job, ports)
        claim.complete(result.info["stored"])
        return result
    if plan_doc.irregular_quotes and len(plan_doc.chunks) > 1:
        # a quote inside an unquoted field or text after a closing quote: the cuts may not
        # fall where the reader's records end (the local executor takes the single path).
        # One chunk, the whole data: the single path's split in one Map item
        first, last = plan_doc.chunks[0], plan_doc.chunks[-1]
        whole = first.model_copy(update={"end": last.end})
        plan_doc = plan_doc.model_copy(update={"chunks": [whole]})
        log_event(logger, "chunked plan: irregular quotes, one chunk", dataset_id=job.dataset_id)
    plan_key = f"{job.work_prefix}plan.json"
    chunks_key = f"{job.work_prefix}chunks.json"
    ports.store.put_document(plan_key, plan_doc)
    chunk_list = json.dumps([chunk.as_json() for chunk in plan_doc.chunks])
    ports.store.put_bytes(chunks_key, chunk_list.encode())
    buckets_key = f"{job.work_prefix}buckets.json"
    bucket_list = json.dumps([{"bucket": b} for b in range(job.buckets)])
    ports.store.put_bytes(buckets_key, bucket_list.encode())
    planned_job = job.model_copy(
        update={
            "data_key": data_key,
            "header_bytes": plan_doc.header_bytes,
            "plan_key": plan_key,
            "chunks_key": chunks_key,
            "buckets_key": buckets_key,
            "chunks": len(plan_doc.chunks),
        }
    )
    log_event(
        logger,
        "chunked plan",
        dataset_id=job.dataset_id,
        correlation_id=job.correlation_id,
        chunks=planned_job.chunks,
        prepared=plan_doc.prepared,
    )
    return StageResult("done", [], {"job": planned_job})


def _replay(record: LedgerRecord, correlation_id: str) -> list[Event]:
    """The completion event of a finished ingest again (as `stages.ingest` replays it);
    nothing while another execution holds the claim."""
    detail = record.result.get("event") if record.status == "completed" else None
    if not detail:
        return []
    kind = c.PROCESSING_COMPLETE if detail.get("status") == "success" else c.PROCESSING_FAILED
    replayed = {
        **detail,
        "replay_of": detail.get("correlation_id"),
        "correlation_id": correlation_id,
    }
    return [Event(c.SOURCE_INGESTOR, kind, replayed)]


def _manifest(job: ChunkJob, size: int) -> Manifest:
    return Manifest(
        dataset_id=job.dataset_id or "",
        correlation_id=job.correlation_id,
        source=Source(
            bucket=job.bucket,
            key=job.source_key,
            version_id=job.source_version,
            sha256=job.sha256 or "",
            size=size,
        ),
        rules_profile=load_profile(job.rules_profile).name,
        ingested_at=job.ingested_at,
    )


def _reject(exc: InputError, size: int, job: ChunkJob, ports: Ports) -> StageResult:
    """The file cannot be used: it stays in raw/, a rejected manifest says why."""
    dataset_id = job.dataset_id or ""
    manifest = _manifest(job, size)
    manifest.status = "rejected"
    manifest.error = FileError(code=exc.code, reason=exc.reason)
    key = manifest_key(dataset_id)
    ports.store.put_document(key, manifest, indent=2)
    ports.metrics.add("FilesRejected", 1, stage=STAGE)
    log_event(logger, "file rejected", dataset_id=dataset_id, code=exc.code)
    detail = ProcessingFailed(
        correlation_id=job.correlation_id,
        dataset_id=dataset_id,
        status="rejected",
        manifest_key=key,
        error=exc.reason,
        error_code=exc.code,
        source_key=job.source_key,
    ).as_json()
    info = {"status": "rejected", "dataset_id": dataset_id, "manifest_key": key}
    return StageResult(
        "rejected",
        [Event(c.SOURCE_INGESTOR, c.PROCESSING_FAILED, detail)],
        {
            "job": job.model_copy(update={"outcome": "rejected"}),
            "stored": info | {"event": detail},
        },
    )


# --- Map A: stage one chunk ----------------------------------------------------------------
def stage(step: ChunkStep, ports: Ports) -> StagedChunk:
    """The chunk's bytes (ranged reads of the data object, after its header line) parsed and
    checked into its staging Parquet file, its malformed records and its records that may
    repeat another in one file per hash bucket, all to work/."""
    job, chunk, workdir = step.job, step.chunk, ports.workdir
    chunk_csv = ports.store.download_ranges(
        job.data_key, workdir / "chunk.csv", [(0, job.header_bytes), (chunk.start, chunk.end)]
    )
    profile = load_profile(job.rules_profile)
    try:
        header = read_header(chunk_csv)
        staged = stage_chunk(
            chunk_csv,
            header,
            profile,
            chunk,
            workdir / "staged.parquet",
            workdir / "malformed.parquet",
            now_iso=job.now_iso,
            limits=engine_limits(ports.ingest_settings.engine, workdir),
        )
    except InputError as exc:
        raise _permanent(exc) from exc
    chunk_csv.unlink()
    keys = [workdir / keys_name(b) for b in range(job.buckets)]
    write_key_buckets(  # its records that may repeat another, by hash bucket, for Reduce
        header,
        profile,
        workdir / "staged.parquet",
        chunk.index,
        keys,
        limits=engine_limits(ports.ingest_settings.engine, workdir),
    )
    store = ports.store
    for bucket, path in enumerate(keys):
        store.put_file(part_key(job, chunk.index, keys_name(bucket)), path, PARQUET)
    store.put_file(
        part_key(job, chunk.index, "staged.parquet"), workdir / "staged.parquet", PARQUET
    )
    store.put_file(
        part_key(job, chunk.index, "malformed.parquet"), workdir / "malformed.parquet", PARQUET
    )
    store.put_document(part_key(job, chunk.index, "staged.json"), staged)
    return staged


# --- Reduce: repeats across chunks, by hash bucket ----------------------------------------
def reduce(step: ReduceStep, ports: Ports) -> RowOffsets | BucketRepeats:
    """With a bucket (one item of the Map over the buckets): every chunk's records of that
    bucket read together, the records repeating an earlier one written to work/. Without
    (after every bucket): the parsed records before each chunk, from the chunks' counts.
    No step reads every chunk's staging file."""
    if step.bucket is not None:
        return _bucket_repeats(step.job, step.bucket, ports)
    job = step.job
    staged = [
        ports.store.get_document(part_key(job, index, "staged.json"), StagedChunk)
        for index in range(job.chunks)
    ]
    if not any(s.rows or s.malformed for s in staged):
        raise PermanentError("no_rows: no data rows (header only)")
    offsets = RowOffsets(rows_before=rows_before(staged))
    ports.store.put_document(offsets_key(job), offsets)
    return offsets


def _bucket_repeats(job: ChunkJob, bucket: int, ports: Ports) -> BucketRepeats:
    workdir = ports.workdir
    parts = [
        ports.store.materialize(
            part_key(job, index, keys_name(bucket)), workdir / f"chunk-{index:05d}"
        ).path
        for index in range(job.chunks)
    ]
    repeats = workdir / "repeats.parquet"
    count = bucket_repeats(
        load_profile(job.rules_profile),
        parts,
        repeats,
        limits=engine_limits(ports.ingest_settings.engine, workdir),
    )
    ports.store.put_file(repeats_key(job, bucket), repeats, PARQUET)
    return BucketRepeats(bucket=bucket, repeats=count)


# --- Map B: split one chunk ----------------------------------------------------------------
def split(step: ChunkStep, ports: Ports) -> ChunkSplit:
    """The chunk's parts of the three outputs, its repeats excluded, to work/."""
    job, index, workdir = step.job, step.chunk.index, ports.workdir
    store = ports.store
    staged = store.get_document(part_key(job, index, "staged.json"), StagedChunk)
    before = store.get_document(offsets_key(job), RowOffsets).rows_before[index]
    staged_file = store.materialize(part_key(job, index, "staged.parquet"), workdir / "staged")
    limits = engine_limits(ports.ingest_settings.engine, workdir)
    buckets = [
        store.materialize(repeats_key(job, b), workdir / f"repeats-{b:04d}").path
        for b in range(job.buckets)
    ]
    repeats = workdir / "repeats.parquet"  # this chunk's, numbered as in the file
    chunk_repeats(buckets, index, before, repeats, limits=limits)
    malformed = [
        store.materialize(part_key(job, i, "malformed.parquet"), workdir / f"malformed-{i:05d}")
        for i in range(job.chunks)
    ]
    out = SplitPaths(
        workdir / "processed.csv", workdir / "processed.parquet", workdir / "rejected.csv"
    )
    try:
        result = split_chunk(
            _header(job, ports, workdir),
            load_profile(job.rules_profile),
            staged,
            staged_file.path,
            before,
            repeats,
            [m.path for m in malformed],
            out,
            limits=limits,
        )
    except InputError as exc:
        raise _permanent(exc) from exc
    store.put_file(part_key(job, index, "processed.csv"), out.processed_csv, "text/csv")
    store.put_file(part_key(job, index, "processed.parquet"), out.processed_parquet, PARQUET)
    store.put_file(part_key(job, index, "rejected.csv"), out.rejected_csv, "text/csv")
    store.put_document(part_key(job, index, "split.json"), result)
    return result


# --- Assemble ------------------------------------------------------------------------------
def assemble(step: JobStep, ports: Ports) -> StageResult:
    """The outputs put together in chunk order (CSVs composed in the store: S3 copies the
    parts server side; the Parquet parts rewritten as one file), the manifest, the claim
    completed, Data Processing Complete."""
    job, workdir, store = step.job, ports.workdir, ports.store
    # the job is the state machine's now: a failure from here is released from it
    forget_execution(store, job.claim_owner)
    dataset_id = job.dataset_id or ""
    splits = [
        store.get_document(part_key(job, i, "split.json"), ChunkSplit) for i in range(job.chunks)
    ]
    keys = DatasetKeys(dataset_id, file_stem(job.source_key), job.ingested_at[:10])
    rows_input = sum(s.rows_input for s in splits)
    rows_rejected = sum(s.rows_rejected for s in splits)
    store.compose(
        keys.processed_csv,
        [part_key(job, s.index, "processed.csv") for s in splits],
        skip=[s.processed_csv_header_bytes if s.index else 0 for s in splits],
    )
    if rows_rejected:
        rejected = [part_key(job, s.index, "rejected.csv") for s in splits]
        if rejected_in_order(splits):
            store.compose(
                keys.rejected_csv,
                rejected,
                skip=[s.rejected_csv_header_bytes if s.index else 0 for s in splits],
            )
        else:  # not expected (see rejected_in_order): merged on source_row here
            local = [
                (store.materialize(key, workdir / f"r{s.index}").path, s.rejected_csv_header_bytes)
                for key, s in zip(rejected, splits, strict=True)
            ]
            merge_rejected_parts(local, workdir / "rejected.csv")
            store.put_file(keys.rejected_csv, workdir / "rejected.csv", "text/csv", consume=True)
    parts = [
        store.materialize(part_key(job, s.index, "processed.parquet"), workdir / f"p{s.index}").path
        for s in splits
    ]
    parquet = workdir / "processed.parquet"
    facts = merge_parquet_parts(
        parts, parquet, limits=engine_limits(ports.ingest_settings.engine, workdir)
    )
    store.put_file(keys.processed_parquet, parquet, PARQUET, consume=True)
    reasons = merge_reasons(splits)
    outputs = Outputs(
        processed_csv=keys.processed_csv,
        processed_parquet=keys.processed_parquet,
        rejected_csv=keys.rejected_csv if rows_rejected else None,
    )
    manifest = _manifest(job, job.size)
    manifest.status = "processed"
    manifest.counts = RowCounts(
        input=rows_input, valid=facts.rows, rejected=rows_rejected, by_reason=reasons
    )
    manifest.outputs = outputs
    manifest.columns = output_columns(_header(job, ports, workdir))
    manifest.users = facts.users
    manifest.time_range = TimeRange(start=facts.first_event, end=facts.last_event)
    manifest.timings = {"chunks": job.chunks}
    store.put_document(keys.manifest, manifest, indent=2)
    metrics = ports.metrics
    metrics.add("FilesIngested", 1, stage=STAGE)
    metrics.add("RowsInput", rows_input, stage=STAGE)
    metrics.add("RowsValid", facts.rows, stage=STAGE)
    metrics.add("RowsRejected", rows_rejected, stage=STAGE)
    ratio = rows_rejected / rows_input if rows_input else 0.0
    metrics.add("RejectRatio", ratio, stage=STAGE, unit="None")
    detail = ProcessingComplete(
        correlation_id=job.correlation_id,
        dataset_id=dataset_id,
        status="success",
        manifest_key=keys.manifest,
        processed_key=keys.processed_parquet,
        processed_csv_key=keys.processed_csv,
        rejected_key=outputs.rejected_csv,
        rows=SummaryRows(input=rows_input, valid=facts.rows, rejected=rows_rejected),
    ).as_json()
    rows = {"input": rows_input, "valid": facts.rows, "rejected": rows_rejected}
    stored = {
        "status": "processed",
        "dataset_id": dataset_id,
        "rows": rows,
        "manifest_key": keys.manifest,
        "event": detail,
    }
    ExecutionClaim(ports.ledger, ledger_key(STAGE, job.sha256 or ""), job.claim_owner).complete(
        stored
    )
    log_event(
        logger,
        "ingested",
        dataset_id=dataset_id,
        correlation_id=job.correlation_id,
        chunks=job.chunks,
        rows_input=rows_input,
        rows_valid=facts.rows,
        rows_rejected=rows_rejected,
    )
    done = Assembled(
        outcome="done",
        dataset_id=dataset_id,
        manifest_key=keys.manifest,
        rows_input=rows_input,
        rows_valid=facts.rows,
        rows_rejected=rows_rejected,
    )
    return StageResult(
        "done", [Event(c.SOURCE_INGESTOR, c.PROCESSING_COMPLETE, detail)], {"assembled": done}
    )


# --- Release: the failure branch --------------------------------------------------------
def release(request: ReleaseRequest, ports: Ports) -> Released:
    """Give up the failed execution's in-progress claim on the upload, so that the same
    bytes uploaded again are ingested at once instead of after the lease. Only the claim
    `request.execution` holds: a claim of another execution, a completed one or none is
    left as it is (`not_held`); a retry after a release finds none (idempotent). Without
    a job (Plan failed: timed out, ran out of memory...), the claim Plan recorded for the
    execution; none recorded: Plan failed before it hashed the upload, nothing to release."""
    released = _release(request, ports)
    # the execution ends: what Plan recorded for it is needed no more (deleted after the
    # release, so a release that fails first is retried with it)
    forget_execution(ports.store, request.execution)
    return released


def _release(request: ReleaseRequest, ports: Ports) -> Released:
    job = request.job
    if job is None:
        key = execution_key(request.execution)
        if not ports.store.exists(key):
            log_event(logger, "chunked plan failed before claiming")
            return Released(outcome="not_held")
        job = ports.store.get_document(key, ChunkJob)
    if not job.sha256:  # Plan failed before it hashed the upload: nothing was claimed
        return Released(outcome="not_held", dataset_id=job.dataset_id)
    key = ledger_key(STAGE, job.sha256)
    record = ports.ledger.get(key)
    held = (
        record is not None and record.status == "in_progress" and record.owner == request.execution
    )
    # conditional on the owner in the store too (a takeover between the two calls is kept)
    ExecutionClaim(ports.ledger, key, request.execution).release()
    log_event(
        logger,
        "chunked claim released" if held else "chunked claim not held",
        dataset_id=job.dataset_id or "",
        correlation_id=job.correlation_id,
    )
    return Released(outcome="released" if held else "not_held", dataset_id=job.dataset_id)


__all__ = ["Chunk", "assemble", "plan", "reduce", "release", "split", "stage"]

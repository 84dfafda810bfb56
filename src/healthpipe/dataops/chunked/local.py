"""The local executor of the chunked engine: the map and split steps of every chunk and the
reduce of every hash bucket on a process pool (one DuckDB per worker, each with the stage's
memory limit and its share of the cores), the plan and assembly in the calling process. Its
outputs are those of `validation.validate_file` on the same file."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from healthpipe.dataops.chunked.assemble import assemble, rejected_in_order
from healthpipe.dataops.chunked.buckets import (
    bucket_repeats,
    chunk_repeats,
    keys_name,
    repeats_name,
    write_key_buckets,
)
from healthpipe.dataops.chunked.chunk_validate import stage_chunk
from healthpipe.dataops.chunked.plan import plan_file, write_chunk_file
from healthpipe.dataops.chunked.repeats import rows_before
from healthpipe.dataops.chunked.split import split_chunk
from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.header import Header
from healthpipe.dataops.validation import validate_file
from healthpipe.dataops.validation.common import check_reserved, output_columns
from healthpipe.dataops.validation.types import SplitPaths, ValidationResult
from healthpipe.dataops.worker_pool import worker_pool
from healthpipe.domain.documents.chunk_plan import Chunk, ChunkPlan, ChunkSplit, StagedChunk
from healthpipe.domain.rules import RuleProfile
from healthpipe.errors import InputError

logger = logging.getLogger("healthpipe.ingest.chunked")
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class _Job:
    """What every worker needs (picklable: sent to each process)."""

    header: Header
    profile: RuleProfile
    now_iso: str
    limits: EngineLimits
    workdir: Path
    buckets: int = 1  # Reduce's hash buckets (one per chunk: each about a chunk's size)

    def folder(self, index: int) -> Path:
        path = self.workdir / f"chunk-{index:05d}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def worker_limits(self, index: int) -> EngineLimits:
        temp = self.limits.temp_dir / f"chunk-{index:05d}" if self.limits.temp_dir else None
        return replace(self.limits, temp_dir=temp)

    def keys(self, index: int, bucket: int) -> Path:
        """A chunk's records of one hash bucket that may repeat another (map writes them)."""
        return self.folder(index) / keys_name(bucket)

    def repeats(self, bucket: int) -> Path:
        """One bucket's repeats, every chunk's (reduce writes them)."""
        return self.workdir / repeats_name(bucket)


@dataclass(frozen=True)
class _Failure:
    """An InputError from a worker (its `code` does not survive pickling)."""

    reason: str
    code: str


class _Guarded:
    def __init__(self, step: Callable[..., object]) -> None:
        self.step = step

    def __call__(self, arg: object) -> object:
        try:
            return self.step(arg)
        except InputError as exc:
            return _Failure(exc.reason, exc.code)


def _map(args: tuple[_Job, Path, ChunkPlan, Chunk]) -> StagedChunk:
    job, data, plan, chunk = args
    folder = job.folder(chunk.index)
    chunk_csv = write_chunk_file(data, plan, chunk, folder / "chunk.csv")
    try:
        staged = stage_chunk(
            chunk_csv,
            job.header,
            job.profile,
            chunk,
            folder / "staged.parquet",
            folder / "malformed.parquet",
            now_iso=job.now_iso,
            limits=job.worker_limits(chunk.index),
        )
    finally:
        chunk_csv.unlink(missing_ok=True)
    write_key_buckets(  # its records that may repeat another, by hash bucket, for reduce
        job.header,
        job.profile,
        folder / "staged.parquet",
        chunk.index,
        [job.keys(chunk.index, b) for b in range(job.buckets)],
        limits=job.worker_limits(chunk.index),
    )
    return staged


def _reduce(args: tuple[_Job, int, list[int]]) -> int:
    """One hash bucket: every chunk's records of it, the repeats found (as on AWS)."""
    job, bucket, chunks = args
    parts = [job.keys(index, bucket) for index in chunks]
    try:
        temp = job.limits.temp_dir / f"bucket-{bucket:04d}" if job.limits.temp_dir else None
        limits = replace(job.limits, temp_dir=temp)
        return bucket_repeats(job.profile, parts, job.repeats(bucket), limits=limits)
    finally:
        for part in parts:
            part.unlink(missing_ok=True)


def parts_of(folder: Path) -> SplitPaths:
    return SplitPaths(
        folder / "processed.csv", folder / "processed.parquet", folder / "rejected.csv"
    )


def _split(args: tuple[_Job, StagedChunk, int, list[Path]]) -> ChunkSplit:
    job, staged, before, malformed = args
    folder = job.folder(staged.index)
    repeats = folder / "repeats.parquet"  # this chunk's, from every bucket's
    buckets = [job.repeats(b) for b in range(job.buckets)]
    try:
        chunk_repeats(
            buckets, staged.index, before, repeats, limits=job.worker_limits(staged.index)
        )
        return split_chunk(
            job.header,
            job.profile,
            staged,
            folder / "staged.parquet",
            before,
            repeats,
            malformed,
            parts_of(folder),
            limits=job.worker_limits(staged.index),
        )
    finally:
        (folder / "staged.parquet").unlink(missing_ok=True)
        repeats.unlink(missing_ok=True)


def _run_all(pool: Executor | None, step: Callable[[T], R], items: Iterable[T]) -> list[R]:
    guarded = _Guarded(step)
    results = list(pool.map(guarded, items) if pool else map(guarded, items))
    for result in results:
        if isinstance(result, _Failure):
            raise InputError(result.reason, code=result.code)
    return results  # type: ignore[return-value]


def default_workers() -> int:
    return os.cpu_count() or 1


# A file is cut in at least this many chunks per worker (so the workers end together), each
# at least MIN_CHUNK_BYTES (the cost of a chunk's connections and parts stays small).
CHUNKS_PER_WORKER = 2
MIN_CHUNK_BYTES = 4 * 1024 * 1024


def chunk_size(file_bytes: int, largest: int, workers: int) -> int:
    """The chunk size for a file: `largest` at most, smaller when that leaves fewer than
    CHUNKS_PER_WORKER chunks per worker, never below MIN_CHUNK_BYTES (unless `largest` is)."""
    even = -(-file_bytes // (CHUNKS_PER_WORKER * workers))
    return min(largest, max(MIN_CHUNK_BYTES, even))


def validate_chunked(
    path: Path,
    header: Header,
    profile: RuleProfile,
    out: SplitPaths,
    *,
    now_iso: str,
    limits: EngineLimits,
    chunk_bytes: int,
    sha256: str,
    workers: int = 0,
) -> ValidationResult:
    """`validation.validate_file`, in chunks of at most about `chunk_bytes` (`chunk_size`) on
    `workers` processes (0: one per core; 1: in this process); `sha256`, the file's, goes
    into the plan. Each worker's DuckDB has `limits.memory_limit_mb` and `limits.threads`
    (0: the cores shared out among the workers)."""
    check_reserved(header)
    workers = workers or default_workers()
    chunk_bytes = chunk_size(path.stat().st_size, chunk_bytes, workers)
    threads = limits.threads or max(1, default_workers() // workers)
    workdir = Path(tempfile.mkdtemp(prefix="chunked-", dir=out.processed_csv.parent))
    job = _Job(header, profile, now_iso, replace(limits, threads=threads), workdir)
    try:
        planned = plan_file(path, workdir, chunk_bytes=chunk_bytes, sha256=sha256)
        plan = planned.plan
        if plan.irregular_quotes:  # cuts may not fall where the reader's records end
            logger.info("chunked ingest: irregular quotes, single-file path instead")
            return validate_file(path, header, profile, out, now_iso=now_iso, limits=limits)
        job = replace(job, buckets=len(plan.chunks))
        context = multiprocessing.get_context("spawn")
        processes = min(workers, len(plan.chunks))  # a one-chunk file runs in this process
        pool = worker_pool(processes, context) if processes > 1 else None
        try:
            logger.debug(
                "chunked plan",
                extra={
                    "fields": {
                        "chunks": len(plan.chunks),
                        "prepared": plan.prepared,
                        "mixed_line_endings": plan.mixed_line_endings,
                    }
                },
            )
            try:
                staged = _run_all(pool, _map, [(job, planned.data, plan, c) for c in plan.chunks])
            except InputError as exc:
                if exc.code != "record_too_long":
                    raise
                # its message numbers the record within the chunk: the single path's scan
                # refuses the file before any parse, with the record's number in the file
                return validate_file(path, header, profile, out, now_iso=now_iso, limits=limits)
            if plan.prepared:  # the uncompressed or LF copy: every chunk is staged
                planned.data.unlink()
            if not any(s.rows or s.malformed for s in staged):
                raise InputError("no data rows (header only)", code="no_rows")
            # repeats across chunks by hash bucket: no step reads every chunk's records
            staged.sort(key=lambda s: s.index)
            before = rows_before(staged)
            indexes = [s.index for s in staged]
            _run_all(pool, _reduce, [(job, b, indexes) for b in range(job.buckets)])
            malformed = [job.folder(s.index) / "malformed.parquet" for s in staged]
            splits = _run_all(
                pool,
                _split,
                [(job, s, b, malformed) for s, b in zip(staged, before, strict=True)],
            )
        finally:
            if pool is not None:
                pool.shutdown()
        if not rejected_in_order(splits):
            logger.info("chunked ingest: rejected rows out of order, single-file path instead")
            return validate_file(path, header, profile, out, now_iso=now_iso, limits=limits)
        parts = [(s, parts_of(job.folder(s.index))) for s in splits]
        result = assemble(parts, out, limits=job.limits)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return ValidationResult(**{**result.__dict__, "columns": output_columns(header)})

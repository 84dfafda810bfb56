"""Reduce over hash buckets (docs/scaling.md, steps 2-3; the AWS executor): each chunk's
records that may repeat another (`duplicate_candidate_sql`) written out in P buckets by the
hash of their duplicate identity; per bucket, the single path's window
(`validation.staged._repeats`) over every chunk's part of it; per chunk, the repeats of all
buckets that fall in it, numbered as in the whole file. Records with the same identity have
the same hash, so they meet in one bucket, and ordering a bucket by (chunk, record in chunk)
is ordering it by the record's number in the file: the repeats and their conflicts are the
single path's.

Only (chunk, record, identity, values) pass between the steps, never the staging files:
no step reads every chunk's staging data."""

from __future__ import annotations

import shutil
from pathlib import Path

from healthpipe.dataops.chunked.staging import create_staged_view
from healthpipe.dataops.engine import EngineLimits, connect, source_list, source_literal
from healthpipe.dataops.header import Header
from healthpipe.dataops.validation.common import INSTANT, KEY, RESERVED_PREFIX, ROW
from healthpipe.dataops.validation.staged import CONFLICT, STAGED
from healthpipe.domain.rules import RuleProfile
from healthpipe.domain.validation_sql import (
    duplicate_candidate_sql,
    duplicate_key_columns,
    quote_ident,
    quote_literal,
    reading_values_sql,
)

CHUNK = quote_ident(f"{RESERVED_PREFIX}chunk__")
VALUES = quote_ident(f"{RESERVED_PREFIX}values__")
BUCKET = quote_ident(f"{RESERVED_PREFIX}bucket__")
# Rows the partitioned write buffers, shared out among the buckets (DuckDB's
# `partitioned_write_flush_threshold` is per partition, 524,288 rows by default): a 128 MB
# chunk's keys in 20 buckets took 336 MB RSS at the default, 162 MB at 8,192 rows each
# (and 3.0 -> 2.0 s); one bucket at 65,536 rows 166 MB.
BUFFERED_ROWS = 65_536
MIN_FLUSH_ROWS = 1_024


def keys_name(bucket: int) -> str:
    """A chunk's records of one hash bucket (map writes one such file per bucket)."""
    return f"keys-{bucket:04d}.parquet"


def repeats_name(bucket: int) -> str:
    """One bucket's repeats across every chunk (reduce writes them)."""
    return f"repeats-{bucket:04d}.parquet"


def _key_name(i: int) -> str:
    return quote_ident(f"{RESERVED_PREFIX}k{i}")


def _files(paths: list[Path]) -> str:
    return source_list(paths)


def write_key_buckets(
    header: Header,
    profile: RuleProfile,
    staged: Path,
    chunk_index: int,
    targets: list[Path],
    *,
    limits: EngineLimits,
) -> None:
    """Map A's side. Inputs: one chunk's staging file and its index; `targets`, one Parquet
    file per bucket (bucket b = the identity hash mod len(targets)). Each target gets the
    chunk's records that may repeat another and fall in it: (chunk, record number in the
    chunk, identity hash, identity columns, the reading's values). Every target is written,
    empty when no record falls in it (or when the profile keeps duplicates)."""
    key = duplicate_key_columns(profile, INSTANT)
    keys = ", ".join(f"{expr} AS {_key_name(i)}" for i, expr in enumerate(key))
    candidates = duplicate_candidate_sql() if profile.reject_duplicates else "false"
    count = len(targets)
    folder = targets[0].parent / "hp_buckets"
    con = connect(limits)
    try:
        flush = max(MIN_FLUSH_ROWS, BUFFERED_ROWS // count)
        con.execute(f"SET partitioned_write_flush_threshold = {flush}")
        create_staged_view(con, header, [(staged, 0)])
        select = (
            f"SELECT {int(chunk_index)} AS {CHUNK}, {ROW}, {KEY}, {keys}, "
            f"{reading_values_sql()} AS {VALUES}, {KEY} % {count} AS {BUCKET} "
            f"FROM {STAGED} WHERE {candidates}"
        )
        # one pass over the staging file, a folder per bucket that has records
        con.execute(
            f"COPY ({select}) TO {quote_literal(str(folder))} "
            f"(FORMAT parquet, PARTITION_BY ({BUCKET}), OVERWRITE_OR_IGNORE)"
        )
        for bucket, target in enumerate(targets):
            written = sorted((folder / f"{BUCKET.strip(chr(34))}={bucket}").glob("*.parquet"))
            if len(written) == 1:  # the usual case: the bucket's file as DuckDB wrote it
                written[0].replace(target)
                continue
            source = (  # several files (a large bucket), or none (an empty one)
                f"SELECT * FROM read_parquet({_files(written)}, hive_partitioning = false)"
                if written
                else f"SELECT * EXCLUDE ({BUCKET}) FROM ({select}) LIMIT 0"
            )
            con.execute(f"COPY ({source}) TO {quote_literal(str(target))} (FORMAT parquet)")
    finally:
        con.close()
        shutil.rmtree(folder, ignore_errors=True)


def bucket_repeats(
    profile: RuleProfile, parts: list[Path], repeats: Path, *, limits: EngineLimits
) -> int:
    """Reduce's side, one bucket. Inputs: every chunk's file of this bucket. Output:
    `repeats` (Parquet: chunk, record number in the chunk, and whether the reading
    conflicts with the first of its identity) for every record repeating an earlier one,
    by the single path's window ordered by (chunk, record). Returns how many."""
    key = duplicate_key_columns(profile, INSTANT)
    names = ", ".join(_key_name(i) for i in range(len(key)))
    rank = quote_ident(f"{RESERVED_PREFIX}n__")
    files = _files(parts)
    con = connect(limits)
    try:
        con.execute(
            f"COPY (SELECT {CHUNK}, {ROW}, {CONFLICT} FROM ("
            f"SELECT {CHUNK}, {ROW}, row_number() OVER w AS {rank}, "
            f"{VALUES} IS DISTINCT FROM first_value({VALUES}) OVER w AS {CONFLICT} "
            f"FROM read_parquet({files}) WHERE {KEY} IN (SELECT {KEY} FROM "
            f"read_parquet({files}) GROUP BY {KEY} HAVING count(*) > 1) "
            f"WINDOW w AS (PARTITION BY {names} ORDER BY {CHUNK}, {ROW})) WHERE {rank} > 1) "
            f"TO {quote_literal(str(repeats))} (FORMAT parquet)"
        )
        (count,) = con.execute(
            f"SELECT count(*) FROM read_parquet({source_literal(repeats)})"
        ).fetchone() or (0,)
    finally:
        con.close()
    return int(count)


def chunk_repeats(
    buckets: list[Path], chunk_index: int, rows_before: int, repeats: Path, *, limits: EngineLimits
) -> None:
    """Split's side. Inputs: every bucket's repeats, the chunk's index and the parsed
    records before it. Output: `repeats` as the single path's window gives them (the record's
    number in the whole file, its conflict) for the records of this chunk."""
    con = connect(limits)
    try:
        con.execute(
            f"COPY (SELECT {ROW} + {int(rows_before)} AS {ROW}, {CONFLICT} "
            f"FROM read_parquet({_files(buckets)}) WHERE {CHUNK} = {int(chunk_index)} "
            f"ORDER BY {ROW}) TO {quote_literal(str(repeats))} (FORMAT parquet)"
        )
    finally:
        con.close()

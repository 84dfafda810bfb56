"""Map: one chunk parsed and checked with the single-file path's SQL (`validation.staged`)
into a staging Parquet file (cells, reasons, the hash of the duplicate identity), and its
malformed records, numbered as in the whole file."""

from __future__ import annotations

from pathlib import Path

import duckdb

from healthpipe.dataops.engine import EngineLimits, connect
from healthpipe.dataops.header import Header
from healthpipe.dataops.record_bounds import blank_lines
from healthpipe.dataops.record_scan import scan_records
from healthpipe.dataops.validation.common import load_malformed
from healthpipe.dataops.validation.file import record_bytes_for
from healthpipe.dataops.validation.staged import STAGED, stage_csv
from healthpipe.dataops.validation.types import (
    MAX_RECORD_BYTES,
    MixedLineEndings,
    RecordTooLong,
)
from healthpipe.domain.documents.chunk_plan import Chunk, StagedChunk
from healthpipe.domain.rules import RuleProfile
from healthpipe.domain.validation_sql import quote_literal
from healthpipe.errors import InputError


def _stage_once(
    con: duckdb.DuckDBPyConnection,
    chunk_csv: Path,
    header: Header,
    profile: RuleProfile,
    chunk: Chunk,
    staged: Path,
    malformed: Path,
    now_iso: str,
    record_bytes: int,
) -> StagedChunk:
    con.execute("SET preserve_insertion_order = true")
    stage_csv(con, chunk_csv, header, profile, now_iso, staged, record_bytes)
    # The reader numbers the chunk's lines from its header line: offset them to the file's.
    con.execute(f"UPDATE hp_reject_errors SET line = line + {int(chunk.lines_before)}")
    count = load_malformed(
        con,
        lambda: [chunk.lines_before + n for n in blank_lines(chunk_csv, gzipped=False)],
        chunk.blank_lines_before,
    )
    con.execute(
        f"COPY (SELECT source_row, kinds, raw_line FROM malformed ORDER BY source_row) "
        f"TO {quote_literal(str(malformed))} (FORMAT parquet)"
    )
    (rows,) = con.execute(f"SELECT count(*) FROM {STAGED}").fetchone() or (0,)
    return StagedChunk(index=chunk.index, rows=int(rows), malformed=count)


def stage_chunk(
    chunk_csv: Path,
    header: Header,
    profile: RuleProfile,
    chunk: Chunk,
    staged: Path,
    malformed: Path,
    *,
    now_iso: str,
    limits: EngineLimits,
) -> StagedChunk:
    """Map one chunk.

    Inputs: `chunk_csv`, the chunk as a CSV file (`plan.write_chunk_file`: the header line
    and the chunk's bytes, uncompressed); `header`, the file's header (`read_header`);
    `chunk`, its entry in the plan; `now_iso`, the same instant for every chunk.
    Outputs: `staged` (Parquet: the chunk's parsed records in order, with reasons and key
    hash) and `malformed` (Parquet: source_row, kinds, raw_line of its malformed records,
    numbered in the whole file); returns their counts. Raises InputError as the single path
    does (`not_utf8`, `not_csv`, `record_too_long`)."""
    plain = Header(header.canonical, gzipped=False)
    record_bytes = record_bytes_for(chunk_csv, plain, scan_records(chunk_csv, gzipped=False))
    while True:
        con = connect(limits)
        try:
            return _stage_once(
                con, chunk_csv, plain, profile, chunk, staged, malformed, now_iso, record_bytes
            )
        except RecordTooLong:
            record_bytes = MAX_RECORD_BYTES
        except MixedLineEndings:  # the plan reads a file mixing endings from its LF copy
            reason = "not a readable CSV file: the CSV parser reached an invalid state"
            raise InputError(reason, code="not_csv") from None
        finally:
            con.close()

"""Split: one chunk's parts of the processed CSV, the processed Parquet and the rejected CSV,
written by the single path's writer (`validation.staged.write_split`) from the chunk's staging
file, with the repeats found across all chunks excluded and every record numbered as in the
whole file."""

from __future__ import annotations

from pathlib import Path

import duckdb

from healthpipe.dataops.chunked.staging import create_staged_view
from healthpipe.dataops.engine import EngineLimits, connect, source_list, source_literal
from healthpipe.dataops.header import Header
from healthpipe.dataops.validation.common import MALFORMED_GAPS_SQL, REASONS, ROW, summarise
from healthpipe.dataops.validation.staged import CONFLICT, STAGED, bit_test, write_split
from healthpipe.dataops.validation.types import SplitPaths
from healthpipe.domain.documents.chunk_plan import ChunkSplit, StagedChunk
from healthpipe.domain.rules import RuleProfile
from healthpipe.domain.validation_sql import repeat_reason_sql


def _parquet_list(paths: list[Path]) -> str:
    return source_list(paths)


def _source_row_sql(con: duckdb.DuckDBPyConnection, first: int, last: int) -> str:
    """The source_row of the parsed records first..last (ROW, numbered in the file): ROW plus
    the malformed records before it, from the runs of the whole file's malformed records
    (table `malformed`), as the single path numbers them; only the runs that end inside the
    chunk and the last one before it matter."""
    gaps = con.execute(
        f"SELECT before_no, skipped FROM ({MALFORMED_GAPS_SQL}) "
        f"WHERE before_no < {int(last)} ORDER BY before_no DESC"
    ).fetchall()
    kept = [(b, s) for b, s in gaps if b >= first]
    kept += [g for g in gaps if g[0] < first][:1]
    if not kept:
        return ROW
    whens = " ".join(f"WHEN {ROW} > {int(b)} THEN {int(s)}" for b, s in kept)
    return f"({ROW} + CASE {whens} ELSE 0 END)"


def _header_bytes(path: Path) -> int:
    with path.open("rb") as handle:
        return len(handle.readline())


def split_chunk(
    header: Header,
    profile: RuleProfile,
    chunk: StagedChunk,
    staged: Path,
    rows_before: int,
    repeats: Path,
    malformed: list[Path],
    out: SplitPaths,
    *,
    limits: EngineLimits,
) -> ChunkSplit:
    """Split one chunk.

    Inputs: its map result and staging file; `rows_before` (`repeats.rows_before`); the
    `repeats` file; every chunk's malformed file, in chunk order (`malformed[chunk.index]`
    is this chunk's). Outputs: the three parts at `out` (each CSV part starts with the header
    line, whose length the result gives); returns the chunk's counts."""
    con = connect(limits)
    try:
        con.execute("SET preserve_insertion_order = true")
        create_staged_view(con, header, [(staged, rows_before)])
        first, last = rows_before + 1, rows_before + chunk.rows
        con.execute(
            "CREATE TEMP TABLE malformed AS SELECT source_row, kinds, raw_line "
            f"FROM read_parquet({_parquet_list(malformed)})"
        )
        source = _source_row_sql(con, first, last)
        con.execute("DROP TABLE malformed")
        con.execute(
            "CREATE TEMP TABLE malformed AS SELECT source_row, kinds, raw_line "
            f"FROM read_parquet({source_literal(malformed[chunk.index])})"
        )
        con.execute(
            f"CREATE TEMP TABLE repeats AS SELECT * FROM read_parquet("
            f"{source_literal(repeats)}) WHERE {ROW} BETWEEN {first} AND {last}"
        )
        repeat = bit_test(con, "hp_excluded", "true")
        conflict = bit_test(con, "hp_conflicts", CONFLICT) if profile.conflicting_readings else ""
        reason = repeat_reason_sql(profile, conflict)
        write_split(con, header, out, repeat, reason, source, chunk.malformed)
        result = summarise(con, out, "rejected_rows", chunk.malformed)
        first_rejected, last_rejected = con.execute(
            f"SELECT min(s), max(s) FROM (SELECT {source} AS s FROM {STAGED} "
            f"WHERE {REASONS} <> '' OR {repeat} UNION ALL SELECT source_row FROM malformed)"
        ).fetchone() or (None, None)
    finally:
        con.close()
    return ChunkSplit(
        index=chunk.index,
        rows_input=result.rows_input,
        rows_valid=result.rows_valid,
        rows_rejected=result.rows_rejected,
        reasons=result.reasons,
        processed_csv_header_bytes=_header_bytes(out.processed_csv),
        rejected_csv_header_bytes=_header_bytes(out.rejected_csv),
        first_rejected_row=first_rejected,
        last_rejected_row=last_rejected,
    )

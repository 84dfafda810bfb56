"""The processed Parquet of a chunked ingest: the chunks' parts read as one ordered dataset and
written with the single path's Parquet options, and the counts read from it. Both executors'
Assemble use it: `chunked.assemble` (local parts) and the AWS Assemble state (parts written on
separate machines)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from healthpipe.dataops.engine import EngineLimits, connect, source_list, source_literal
from healthpipe.domain.validation_sql import quote_literal


@dataclass(frozen=True)
class ParquetFacts:
    rows: int
    users: int
    first_event: str | None
    last_event: str | None


def merge_parquet_parts(parts: list[Path], target: Path, *, limits: EngineLimits) -> ParquetFacts:
    """`target`: the rows of `parts` in order (zstd Parquet); its rows, distinct users and
    event time range."""
    files = source_list(parts)
    out = quote_literal(str(target))  # a COPY target is not globbed
    con = connect(limits)
    try:
        con.execute("SET preserve_insertion_order = true")
        con.execute(
            f"COPY (SELECT * FROM read_parquet({files})) TO {out} "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
        rows, users, first, last = con.execute(
            "SELECT count(*), count(DISTINCT user_id), CAST(min(event_time) AS VARCHAR), "
            f"CAST(max(event_time) AS VARCHAR) FROM read_parquet({source_literal(target)})"
        ).fetchone() or (0, 0, None, None)
    finally:
        con.close()
    return ParquetFacts(int(rows), int(users), first, last)

"""Reduce: the records that repeat an earlier record's duplicate identity, across all chunks,
found by the single path's SQL (`validation.staged._repeats`) over every chunk's staging
file numbered as in the whole file: which source rows are repeats, and which of them conflict
with the first reading."""

from __future__ import annotations

from pathlib import Path

from healthpipe.dataops.chunked.staging import create_staged_view
from healthpipe.dataops.engine import EngineLimits, connect
from healthpipe.dataops.header import Header
from healthpipe.dataops.validation.staged import _repeats
from healthpipe.domain.documents.chunk_plan import StagedChunk
from healthpipe.domain.rules import RuleProfile
from healthpipe.domain.validation_sql import quote_literal


def rows_before(staged: list[StagedChunk]) -> list[int]:
    """The parsed records before each chunk (its staging rows' offset in the file)."""
    before, total = [], 0
    for chunk in sorted(staged, key=lambda s: s.index):
        before.append(total)
        total += chunk.rows
    return before


def find_repeats(
    header: Header,
    profile: RuleProfile,
    staged: list[tuple[StagedChunk, Path]],
    repeats: Path,
    *,
    limits: EngineLimits,
) -> list[int]:
    """Reduce.

    Inputs: every chunk's map result and staging file, in chunk order.
    Output: `repeats` (Parquet: the parsed-record number, 1-based in the whole file, of
    every repeat, and whether it conflicts with the first reading); returns the parsed
    records before each chunk (the `rows_before` of `split_chunk`)."""
    ordered = sorted(staged, key=lambda s: s[0].index)
    before = rows_before([s for s, _ in ordered])
    con = connect(limits)
    try:
        con.execute("SET preserve_insertion_order = true")
        create_staged_view(con, header, [(p, b) for (_, p), b in zip(ordered, before, strict=True)])
        _repeats(con, profile, sum(s.rows for s, _ in ordered))
        con.execute(f"COPY repeats TO {quote_literal(str(repeats))} (FORMAT parquet)")
    finally:
        con.close()
    return before

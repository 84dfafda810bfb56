"""Reduce's offsets: the parsed records before each chunk, which number a chunk's records as
in the whole file (the repeats themselves are found by hash bucket: `chunked.buckets`)."""

from __future__ import annotations

from healthpipe.domain.documents.chunk_plan import StagedChunk


def rows_before(staged: list[StagedChunk]) -> list[int]:
    """The parsed records before each chunk (its staging rows' offset in the file)."""
    before, total = [], 0
    for chunk in sorted(staged, key=lambda s: s.index):
        before.append(total)
        total += chunk.rows
    return before

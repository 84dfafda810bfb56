"""Assemble: the chunks' parts put together in order (the CSVs by file concatenation, each
header line kept from the first part only; the Parquet parts read as one ordered dataset and
written with the single path's Parquet options), and the counts added up."""

from __future__ import annotations

import shutil
from pathlib import Path

from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.parquet_parts import merge_parquet_parts
from healthpipe.dataops.validation.types import MALFORMED_REASON, SplitPaths, ValidationResult
from healthpipe.domain.documents.chunk_plan import ChunkSplit

COPY_BYTES = 4 * 1024 * 1024


def concatenate(parts: list[tuple[Path, int]], target: Path) -> None:
    """`target`: the files `parts` (path, bytes of its header line) one after the other,
    with the first part's header line only."""
    with target.open("wb") as out:
        for i, (path, header_bytes) in enumerate(parts):
            with path.open("rb") as part:
                if i:
                    part.seek(header_bytes)
                shutil.copyfileobj(part, out, COPY_BYTES)


def merge_reasons(splits: list[ChunkSplit]) -> dict[str, int]:
    """The reasons counted over all chunks, ordered as the single path orders them (most
    frequent first, then by name; malformed records last)."""
    total: dict[str, int] = {}
    for split in splits:
        for reason, count in split.reasons.items():
            total[reason] = total.get(reason, 0) + count
    malformed = total.pop(MALFORMED_REASON, 0)
    ordered = dict(sorted(total.items(), key=lambda item: (-item[1], item[0])))
    if malformed:
        ordered[MALFORMED_REASON] = malformed
    return ordered


def rejected_in_order(splits: list[ChunkSplit]) -> bool:
    """Whether the rejected parts, concatenated in chunk order, are in source_row order as
    the single path writes them. They are when every chunk numbers its records as the single
    path does (blank lines are no records, `validation.common.load_malformed`); before that
    fix, a malformed record after blank lines numbered after a rejected row of the next
    chunk. Kept as a check: a file whose parts would not concatenate in order is split by
    the single path (the local executor) or merged on source_row (the AWS one)."""
    last = None
    for split in sorted(splits, key=lambda s: s.index):
        if split.first_rejected_row is None or split.last_rejected_row is None:
            continue
        if last is not None and split.first_rejected_row < last:
            return False
        last = split.last_rejected_row
    return True


def assemble(
    parts: list[tuple[ChunkSplit, SplitPaths]], out: SplitPaths, *, limits: EngineLimits
) -> ValidationResult:
    """Assemble.

    Inputs: every chunk's split result and parts, in any order. Outputs: the three outputs
    at `out` (the rejected CSV is written even when no row is rejected, as by the single
    path); returns the whole file's counts, users and time range (columns left empty)."""
    ordered = sorted(parts, key=lambda p: p[0].index)
    splits = [s for s, _ in ordered]
    concatenate(
        [(p.processed_csv, s.processed_csv_header_bytes) for s, p in ordered], out.processed_csv
    )
    concatenate(
        [(p.rejected_csv, s.rejected_csv_header_bytes) for s, p in ordered], out.rejected_csv
    )
    facts = merge_parquet_parts(
        [p.processed_parquet for _, p in ordered], out.processed_parquet, limits=limits
    )
    rows_input = sum(s.rows_input for s in splits)
    return ValidationResult(
        rows_input=rows_input,
        rows_valid=facts.rows,
        rows_rejected=rows_input - facts.rows,
        reasons=merge_reasons(splits),
        users=facts.users,
        first_event=facts.first_event,
        last_event=facts.last_event,
    )

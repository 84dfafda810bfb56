"""The rejected CSV of a chunked ingest whose parts, put end to end, are not in source_row
order (`chunked.assemble.rejected_in_order` is False; not expected since every chunk numbers
its records as the single path does, blank lines excluded, but checked). The AWS executor
cannot fall back to the single-file path for a file that large, so the parts are merged
record by record on their source_row; each record's bytes are kept exactly as the split
step wrote them."""

from __future__ import annotations

import csv
import heapq
import io
from collections.abc import Iterator
from pathlib import Path

from healthpipe.dataops.record_scan import records

SOURCE_ROW = "source_row"


def _records(path: Path, skip: int) -> Iterator[bytes]:
    """The CSV records of `path` after its first `skip` bytes, each with its line end (a
    record ends at a newline outside quotes: an even count of quotes so far)."""
    with path.open("rb") as handle:
        handle.seek(skip)
        yield from records(handle)


def _field(record: bytes, column: int) -> str:
    return next(csv.reader(io.StringIO(record.decode("utf-8"), newline="")))[column]


def merge_rejected_parts(parts: list[tuple[Path, int]], target: Path) -> None:
    """`target`: the header line of the first part (`parts`: path, bytes of its header line),
    then every part's records merged in source_row order (a tie keeps chunk order)."""
    first, header_bytes = parts[0]
    with first.open("rb") as handle:
        header = handle.read(header_bytes)
    column = next(csv.reader(io.StringIO(header.decode("utf-8"), newline=""))).index(SOURCE_ROW)

    def keyed(index: int, path: Path, skip: int) -> Iterator[tuple[int, int, bytes]]:
        for record in _records(path, skip):
            yield int(_field(record, column)), index, record

    streams = [keyed(i, path, skip) for i, (path, skip) in enumerate(parts)]
    with target.open("wb") as out:
        out.write(header)
        for _, _, record in heapq.merge(*streams):
            out.write(record)

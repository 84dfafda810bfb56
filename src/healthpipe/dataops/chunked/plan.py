"""Plan: one streaming pass over a file that cuts it into chunks at record starts (newlines
outside quoted fields; a quote opens a field only at a field start, as the CSV reader reads
it), so that a quoted field holding a line break is never cut.

A gzip file is decompressed during the same pass and the plan is made over the uncompressed
copy (the dataset id stays the stored file's SHA-256, which the caller passes in):
DuckDB cannot start reading a gzip stream in the middle, and every chunk must be read on its
own. A file mixing CRLF and LF line endings is planned over a copy with LF endings only, the
copy the single-file path reads too (`record_scan.with_lf_line_endings`: records and their
numbers are unchanged).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from healthpipe.dataops.header import CORRUPT_GZIP, is_gzip
from healthpipe.dataops.record_bounds import RecordBounds
from healthpipe.dataops.record_scan import with_lf_line_endings
from healthpipe.domain.documents.chunk_plan import Chunk, ChunkPlan
from healthpipe.errors import InputError

BLOCK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class PlannedFile:
    """The plan and the local file its byte ranges refer to (the file, or its copy)."""

    plan: ChunkPlan
    data: Path


@dataclass(frozen=True)
class Scanned:
    """One pass over the (uncompressed) data: its cuts and its size."""

    cuts: RecordBounds
    data_size: int

    @property
    def mixed_line_endings(self) -> bool:
        return self.cuts.crlf and self.cuts.bare_lf


class StreamScan:
    """The cut scan fed the data in pieces of any size as they arrive (a file read in
    blocks, an object's body on the network): only the running state is held."""

    def __init__(self, chunk_bytes: int) -> None:
        self._cuts = RecordBounds(chunk_bytes)
        self._offset = 0

    def feed(self, block: bytes) -> None:
        if block:
            self._cuts.feed(block, self._offset)
            self._offset += len(block)

    def result(self) -> Scanned:
        return Scanned(self._cuts, self._offset)


def scan_blocks(blocks: Iterable[bytes], chunk_bytes: int) -> Scanned:
    """The cut scan over all of `blocks` (one pass)."""
    scan = StreamScan(chunk_bytes)
    for block in blocks:
        scan.feed(block)
    return scan.result()


def gunzip_blocks(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The gzip data of `blocks` decompressed as it comes, in pieces of at most
    `BLOCK_BYTES` (so a highly compressed block never expands in memory at once); several
    members in a row and zero padding after one are read as `gzip.open` reads them.
    Raises InputError(`corrupt_gzip`) for damaged or cut-short data."""
    inflate, fed = zlib.decompressobj(wbits=31), False
    try:
        for block in blocks:
            data = block
            while True:
                out = inflate.decompress(data, BLOCK_BYTES)
                fed = fed or bool(data)
                if out:
                    yield out
                if inflate.eof:  # the member ended: the next one starts in its unused data
                    data = inflate.unused_data.lstrip(b"\x00")
                    inflate, fed = zlib.decompressobj(wbits=31), False
                    if not data:
                        break
                else:
                    data = inflate.unconsumed_tail
                    if not data and len(out) < BLOCK_BYTES:  # all taken, nothing pending
                        break
        if rest := inflate.flush():
            yield rest
    except zlib.error as exc:
        raise InputError(CORRUPT_GZIP, code="corrupt_gzip") from exc
    if fed and not inflate.eof:
        raise InputError(CORRUPT_GZIP, code="corrupt_gzip")


def lf_blocks(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """`blocks` with every CRLF turned into LF (`record_scan.with_lf_line_endings` as a
    stream: a CR that ends a block waits for the next one)."""
    carry = b""
    for block in blocks:
        data = carry + block
        carry = b"\r" if data.endswith(b"\r") else b""
        yield data[: len(data) - len(carry)].replace(b"\r\n", b"\n")
    if carry:
        yield carry


def plan_of(
    scanned: Scanned, *, sha256: str, size: int, gzipped: bool, prepared: bool, mixed: bool
) -> ChunkPlan:
    """The plan a scan gives (`size`: the stored file's; `prepared`: the scan was over a
    copy, uncompressed or with LF endings; `mixed`: the stored data mixes CRLF and LF)."""
    cuts = scanned.cuts
    return ChunkPlan(
        sha256=sha256,
        size=size,
        gzipped=gzipped,
        prepared=prepared,
        mixed_line_endings=mixed,
        data_size=scanned.data_size,
        header_bytes=max(cuts.header_bytes, 0),
        irregular_quotes=cuts.irregular,
        chunk_bytes=cuts.chunk_bytes,
        chunks=cuts.chunks(scanned.data_size) if cuts.header_bytes >= 0 else [],
    )


def _blocks(stream: BinaryIO, copy: BinaryIO | None) -> Iterator[bytes]:
    while block := stream.read(BLOCK_BYTES):
        if copy is not None:
            copy.write(block)
        yield block


def _scan(stream: BinaryIO, chunk_bytes: int, copy: BinaryIO | None) -> Scanned:
    return scan_blocks(_blocks(stream, copy), chunk_bytes)


def plan_file(source: Path, workdir: Path, *, chunk_bytes: int, sha256: str) -> PlannedFile:
    """Plan `source` (a CSV or gzip CSV file with a header line) in chunks of about
    `chunk_bytes` bytes each (a chunk ends at the first record start at or after its mark,
    so a record longer than `chunk_bytes` makes its chunk longer).

    Inputs: `source`, a local file; `workdir`, a folder for the uncompressed or LF copy;
    `sha256`, the stored file's hash, which the object store computed while it fetched the
    file (`ports.ObjectStore.materialize`: the one place that hashes), kept in the plan.
    Output: the plan and the path its ranges refer to (`source` itself unless `prepared`).
    Raises InputError(`corrupt_gzip`) for damaged gzip data."""
    gzipped = is_gzip(source)
    data = source
    if gzipped:
        data = workdir / "data.csv"
        try:
            with gzip.open(source, "rb") as stream, data.open("wb") as out:
                scanned = _scan(stream, chunk_bytes, out)  # type: ignore[arg-type]
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(CORRUPT_GZIP, code="corrupt_gzip") from exc
    else:
        with source.open("rb") as stream:
            scanned = _scan(stream, chunk_bytes, None)
    mixed = scanned.mixed_line_endings
    if mixed:
        lf = workdir / "data.lf.csv"
        with_lf_line_endings(data, False, lf)
        if data != source:
            data.unlink()
        data = lf
        with data.open("rb") as stream:
            scanned = _scan(stream, chunk_bytes, None)
    plan = plan_of(
        scanned,
        sha256=sha256,
        size=source.stat().st_size,
        gzipped=gzipped,
        prepared=data != source,
        mixed=mixed,
    )
    return PlannedFile(plan, data)


def write_chunk_file(data: Path, plan: ChunkPlan, chunk: Chunk, target: Path) -> Path:
    """`target`: the header line of `data` followed by the bytes of `chunk` (a CSV file the
    single-file reader takes as it is)."""
    with data.open("rb") as source, target.open("wb") as out:
        out.write(source.read(plan.header_bytes))
        source.seek(chunk.start)
        left = chunk.end - chunk.start
        while left > 0 and (block := source.read(min(BLOCK_BYTES, left))):
            out.write(block)
            left -= len(block)
    return target

"""The length of a file's longest record, found before DuckDB reads it.

DuckDB's CSV reader loses a record longer than its buffer without a trace (no row, no
reject, and the records after it are numbered one too low), and splits a quoted multi-line
record longer than its buffer into many bogus ones. Ingest therefore measures the longest
record first and picks buffers that hold it, or refuses the file when no buffer it may use
does (see `validate.validate_file`).

The scan reads the file in blocks with C-speed byte methods only (`count`, `find`,
`rfind`): a record boundary is a newline outside quotes, quotes tracked by parity. Only the
first and last boundary of each block are looked at, so a record longer than a block is
measured exactly and shorter ones are known to be shorter than a block. Parity treats a
literal quote inside an unquoted field (`u"1`, which CSV readers keep as text) as opening a
quoted field, so a file holding one may be measured longer than it is (never shorter,
unless such a quote also precedes a long quoted multi-line field): `first_record_longer_than`,
a record-by-record reader with CSV semantics, settles the rare files measured long.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from healthpipe.dataops.header import CORRUPT_GZIP
from healthpipe.errors import InputError

BLOCK_BYTES = 1024 * 1024


def records(handle: BinaryIO) -> Iterator[bytes]:
    """The records read from `handle`, each with its line ending: a record ends at a newline
    outside quotes (an even count of quotes so far), so a quoted line break stays inside its
    record. The record-by-record twin of this module's block scan, for the callers that need
    each record's bytes (erasure's filter, the merge of rejected parts)."""
    pending: list[bytes] = []
    inside = False
    for line in handle:
        pending.append(line)
        inside ^= line.count(b'"') & 1 == 1
        if not inside:
            yield b"".join(pending)
            pending = []
    if pending:
        yield b"".join(pending)


def open_data(path: Path, gzipped: bool) -> BinaryIO:
    """The file's bytes for reading, decompressed when `gzipped`."""
    if gzipped:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _first_boundary(block: bytearray, inside: bool, size: int) -> int:
    """The first newline of block[:size] outside quotes (quote state `inside` at 0), or -1."""
    at = 0
    while True:
        nl = block.find(b"\n", at, size)
        if nl < 0:
            return -1
        inside = inside ^ (block.count(b'"', at, nl) & 1 == 1)
        if not inside:
            return nl
        at = nl + 1


def _last_boundary(block: bytearray, inside_at_end: bool, size: int) -> int:
    """The last newline of block[:size] outside quotes (quote state `inside_at_end` at the
    end of block[:size]), or -1."""
    end = size
    inside = inside_at_end
    while True:
        nl = block.rfind(b"\n", 0, end)
        if nl < 0:
            return -1
        inside = inside ^ (block.count(b'"', nl + 1, end) & 1 == 1)
        if not inside:
            return nl
        end = nl


def _longest_line_unquoted(path: Path) -> int | None:
    """The longest line of an uncompressed file without a quote, or None when it has a
    quote. Read block by block into one buffer (a search for a quote, then a find and an rfind at
    the block's edges), so a quote-free file costs about one read at memory speed and the
    process holds one block of it: a memory map of the whole file would count every page
    read in the process's resident memory (the file's size at its peak)."""
    size, longest, boundary = 0, 0, -1
    block = bytearray(BLOCK_BYTES)
    with path.open("rb") as handle:
        while read := handle.readinto(block):
            if block.find(b'"', 0, read) >= 0:
                return None
            first = block.find(b"\n", 0, read)
            if first >= 0:
                longest = max(longest, size + first - boundary)
                boundary = size + block.rfind(b"\n", 0, read)
            size += read
    return max(longest, size - 1 - boundary)


@dataclass(frozen=True)
class RecordScan:
    # An upper bound of the byte length of the file's longest record (header included,
    # line ending included); exact for any record longer than BLOCK_BYTES unless a literal
    # quote inside an unquoted field shifts the quote parity (see the module docstring).
    longest: int
    # Both CRLF and bare LF seen (only looked for in files with quotes: with quotes DuckDB
    # misreads such a file without an error, without them it stops with one).
    mixed_endings: bool = False


def scan_records(path: Path, gzipped: bool) -> RecordScan:
    """The longest record, and whether a file with quotes mixes CRLF and LF endings."""
    if not gzipped:
        unquoted = _longest_line_unquoted(path)
        if unquoted is not None:
            return RecordScan(unquoted)
    longest = 0
    boundary = -1  # absolute offset of the last record boundary seen
    inside = False  # inside a quoted field at the start of the current block
    offset = 0
    crlf = bare_lf = ends_with_cr = False
    block = bytearray(BLOCK_BYTES)
    try:
        with open_data(path, gzipped) as handle:
            while True:
                size = handle.readinto(block)  # type: ignore[attr-defined]
                if not size:
                    break
                quotes = block.count(b'"', 0, size)
                inside_at_end = inside ^ (quotes & 1 == 1)
                if quotes == 0 and not inside:
                    first = block.find(b"\n", 0, size)
                    last = block.rfind(b"\n", 0, size)
                else:
                    first = _first_boundary(block, inside, size)
                    last = _last_boundary(block, inside_at_end, size) if first >= 0 else -1
                if first >= 0:
                    longest = max(longest, offset + first - boundary)
                    boundary = offset + last
                split_pair = 1 if ends_with_cr and block[0] == 10 else 0  # CR|LF across blocks
                if block.find(b"\r", 0, size) < 0:
                    crlf = crlf or split_pair > 0
                    bare_lf = bare_lf or block.find(b"\n", split_pair, size) >= 0
                else:
                    pairs = block.count(b"\r\n", 0, size) + split_pair
                    crlf = crlf or pairs > 0
                    bare_lf = bare_lf or block.count(b"\n", 0, size) > pairs
                ends_with_cr = block[size - 1] == 13
                inside = inside_at_end
                offset += size
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(CORRUPT_GZIP, code="corrupt_gzip") from exc
    return RecordScan(max(longest, offset - 1 - boundary), crlf and bare_lf)


def first_record_longer_than(path: Path, gzipped: bool, limit: int) -> int | None:
    """The data-record number (header excluded) of the first record whose cells and
    separators alone exceed `limit` bytes, read with CSV semantics (Python's csv module: a
    quote opens a quoted field only at the start of a field), or None when there is none.
    Slow; for the rare files `scan_records` measures long."""
    csv.field_size_limit(sys.maxsize)
    with open_data(path, gzipped) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        records = (record for record in csv.reader(text, strict=False) if record)  # no blanks
        for number, record in enumerate(records):
            # At least the cells and a separator (or the newline) after each.
            if sum(len(cell.encode()) for cell in record) + len(record) > limit:
                return number
    return None


def with_lf_line_endings(path: Path, gzipped: bool, target: Path) -> Path:
    """`target`: the file, uncompressed, with every CRLF turned into LF (DuckDB's strict
    parser refuses a file that mixes the two; records and their numbers are unchanged)."""
    with open_data(path, gzipped) as source, target.open("wb") as out:
        carry = b""
        while chunk := source.read(BLOCK_BYTES):
            chunk = carry + chunk
            carry = b"\r" if chunk.endswith(b"\r") else b""
            out.write(chunk[: len(chunk) - len(carry)].replace(b"\r\n", b"\n"))
        out.write(carry)
    return target

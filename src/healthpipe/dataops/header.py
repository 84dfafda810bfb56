"""Reads just enough of a file to judge its header: encoding, compression, required columns."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from healthpipe.constants import REQUIRED_COLUMNS
from healthpipe.domain.formula import guard_formula
from healthpipe.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
GZIP_SUFFIXES = (".gz", ".gzip")
CORRUPT_GZIP = "corrupt gzip file: the compressed data is damaged or cut short"
SNIFF_BYTES = 64 * 1024
GZIP_TRAILER = 18  # the smallest gzip: a 10-byte header, an empty deflate block, CRC32, ISIZE
COUNT_PIECE = 1024 * 1024


@dataclass(frozen=True)
class Header:
    """The canonical name of each of the file's columns, in order, and its compression."""

    canonical: tuple[str, ...]
    gzipped: bool

    @property
    def extras(self) -> tuple[str, ...]:
        return tuple(name for name in self.canonical if name not in REQUIRED_COLUMNS)


def canonical_name(raw: str) -> str:
    """Lower-case, trimmed; a name a spreadsheet would run as a formula gets a leading `'`
    (`domain/formula.py`; extra columns are copied into the CSV outputs' headers)."""
    name = raw.strip().strip("\ufeff").strip().lower()
    return guard_formula(name)


def is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def reads_more_than(path: Path, limit: int, *, gzipped: bool) -> bool:
    """Whether validating `path` reads more than `limit` bytes of CSV: the file's size, or
    for a gzip its uncompressed size (what routes a file to the chunked engine).

    A gzip larger than `limit` is above it. Otherwise its trailer's ISIZE (the last member's
    uncompressed size mod 2**32) is a lower bound of the whole: ISIZE > `limit` answers at
    once. Else the data is decompressed and counted, stopping as soon as more than `limit`
    bytes came out: right for multi-member files and over 4 GiB, and at most `limit` bytes of
    zlib work (docs/scaling.md). A damaged gzip may go either way (its "ISIZE" is any 4
    bytes; the count stops at the damage): both engines reject it as `corrupt_gzip`."""
    size = path.stat().st_size
    if not gzipped or size > limit:
        return size > limit
    if size >= GZIP_TRAILER:
        with path.open("rb") as handle:
            handle.seek(size - 4)
            if int.from_bytes(handle.read(4), "little") > limit:
                return True
    counted = 0
    try:
        with gzip.open(path, "rb") as stream:
            while piece := stream.read(COUNT_PIECE):
                counted += len(piece)
                if counted > limit:
                    return True
    except (OSError, EOFError, zlib.error):
        pass
    return False


def _first_bytes(path: Path, gzipped: bool) -> bytes:
    try:
        if gzipped:
            with gzip.open(path, "rb") as handle:
                return handle.read(SNIFF_BYTES)
        with path.open("rb") as handle:
            return handle.read(SNIFF_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(CORRUPT_GZIP, code="corrupt_gzip") from exc


WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _wide_encoding(head: bytes) -> str | None:
    """The name of the wide encoding the text is in, UTF-16 or UTF-32 (by its byte-order
    mark, or ASCII text with a zero byte beside every character), else None."""
    for bom in WIDE_BOMS:
        if head.startswith(bom):
            return "UTF-32" if len(bom) == 4 else "UTF-16"
    sample = head[:64]
    text = sample.replace(b"\x00", b"")
    ascii_text = len(text) >= 4 and all(b in b"\t\r\n" or 32 <= b < 127 for b in text)
    if ascii_text and (not any(sample[1::2]) or not any(sample[0::2])):
        return "UTF-32" if not any(sample[1::4] + sample[2::4]) else "UTF-16"
    return None


def read_header(path: Path) -> Header:
    """Parse and check the header line; raise InputError with a one-line reason if unusable.
    A file named `.gz` must be gzip (`not_gzip`) and decompress (`corrupt_gzip`): its bytes
    are never judged as a CSV header."""
    if path.stat().st_size == 0:
        raise InputError("file is empty", code="empty_file")
    gzipped = is_gzip(path)
    if not gzipped and path.name.lower().endswith(GZIP_SUFFIXES):
        raise InputError(
            "not a gzip file: the name ends in .gz but the content is not gzip-compressed",
            code="not_gzip",
        )
    head = _first_bytes(path, gzipped)
    if not head.strip(b"\xef\xbb\xbf \r\n\t"):
        raise InputError("file is empty", code="empty_file")
    wide = _wide_encoding(head)
    if wide:
        raise InputError(f"file is {wide} encoded; re-export it as UTF-8", code="not_utf8")
    if b"\x00" in head:
        raise InputError("not a CSV text file (binary content)", code="not_csv")
    first_line = head.split(b"\n", 1)[0].rstrip(b"\r").split(b"\r", 1)[0]  # CR-only endings too
    try:
        text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError("header is not UTF-8 encoded", code="not_utf8") from exc
    try:
        names = next(csv.reader(io.StringIO(text.rstrip("\r"))), [])
    except csv.Error as exc:  # e.g. CR-only line endings: the whole file on one "line"
        raise InputError(f"not a readable CSV header: {exc}", code="not_csv") from exc
    canonical = tuple(canonical_name(name) for name in names)
    if len(canonical) > 1 and canonical[-1] == "" and all(canonical[:-1]):
        # A trailing delimiter (some exports end every line with one): the last column has
        # no name; it is kept, as an extra column, so that nothing in it is lost.
        canonical = (*canonical[:-1], f"unnamed_{len(canonical)}")
    if not any(canonical):
        raise InputError("no header row", code="no_header")
    repeated = sorted(name for name, count in Counter(canonical).items() if count > 1 and name)
    if repeated:
        raise InputError(f"repeated column(s) in header: {', '.join(repeated)}", code="bad_header")
    missing = [col for col in REQUIRED_COLUMNS if col not in canonical]
    if missing:
        if len(missing) == len(REQUIRED_COLUMNS):
            raise InputError(
                "no vitals header: expected comma-separated columns " + ",".join(REQUIRED_COLUMNS),
                code="missing_columns",
            )
        raise InputError(
            f"missing required column(s): {', '.join(missing)}", code="missing_columns"
        )
    if any(name == "" for name in canonical):
        raise InputError("header has an empty column name", code="bad_header")
    return Header(canonical, gzipped)

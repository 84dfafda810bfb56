"""Where a CSV file's records end, as DuckDB's reader delimits them: a newline outside quoted
fields, where a quote opens a field only at a field start (after a comma or a newline,
spaces between allowed) and a quote inside an unquoted field is text. One streaming pass
over the data in blocks, C-speed byte searches between the quotes.

It gives the chunked plan its cuts (`chunked/plan.py`) and the validation the blank lines
(`blank_lines`): DuckDB skips a blank line as a record but counts it as a line when it
numbers a malformed record, and `source_row` counts records only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from healthpipe.dataops.record_scan import open_data
from healthpipe.domain.documents.chunk_plan import Chunk

BLOCK_BYTES = 1024 * 1024
NEWLINE = 10
QUOTE = 34
# an LF ending a line that a blank line follows (LF or CRLF): the blank line's LF is 1 or 2
# bytes on
BEFORE_BLANK = re.compile(rb"\n(?=\r?\n)")
BLANK = re.compile(rb"\n\r?\n")  # a blank line, quotes ignored (one search of a block)
SPACE = 32
FIELD_START = (44, 10)  # a comma, a newline
FIELD_END = (44, 10, 13)  # a comma, a newline, a carriage return
NO_CUTS = 1 << 62  # a `chunk_bytes` no data reaches: the scan for its lines only


@dataclass
class RecordBounds:
    """The running state of the cut scan over the data (after the header line): the record
    starts every `chunk_bytes` at least (the chunked plan's cuts), the newlines outside quotes
    and the blank lines among them, the line endings seen and whether quotes are irregular."""

    chunk_bytes: int
    header_bytes: int = -1  # -1 until the header line's newline is seen
    inside: bool = False
    lines: int = 0  # newlines outside quotes after the header line
    blanks: int = 0  # of those, the ends of blank lines (the CSV reader skips them)
    tail: bytes = b""  # the last two bytes of the data before the current block
    mark: int = 0  # the next cut is the first record start at or after this offset
    crlf: bool = False
    bare_lf: bool = False
    ends_with_cr: bool = False
    closed_at_end: bool = False  # the block ended with a closing quote
    last_byte: int = NEWLINE  # the last byte other than a space
    # a quote inside an unquoted field, or text after a closing quote: records the CSV
    # reader may delimit otherwise than the plan (see `ChunkPlan.irregular_quotes`)
    irregular: bool = False
    # the blank lines' numbers on the count of `lines` (1: the line after the header), when
    # asked for (a list); the plan only counts them
    blank_numbers: list[int] | None = field(default=None)
    blank_in_block: bool = False  # the current block may hold a blank line

    def __post_init__(self) -> None:
        # (record start, lines before it, blank lines among those)
        self.starts: list[tuple[int, int, int]] = []

    def feed(self, block: bytes, offset: int) -> None:
        """Scan the next block of the data (at `offset`). A quote opens a quoted field only
        at a field start (after a comma or a newline, spaces between allowed), as the CSV
        reader reads it: a quote inside an unquoted field (`u"1`) is text, and would
        otherwise flip the parity."""
        self._endings(block)
        # a blank line in the block, quotes ignored: most blocks have none
        self.blank_in_block = BLANK.search(block) is not None
        at = 0
        if self.header_bytes < 0:
            nl = block.find(b"\n")
            if nl < 0:
                self.tail = (self.tail + block[-2:])[-2:]
                return
            self.header_bytes = offset + nl + 1
            self.mark = self.header_bytes + self.chunk_bytes
            self.starts.append((self.header_bytes, 0, 0))
            at = nl + 1
        size = len(block)
        closed_at_start, self.closed_at_end = self.closed_at_end, False
        if closed_at_start and block[at] != QUOTE and block[at] not in FIELD_END:
            self.irregular = True
        while at < size:
            quote = block.find(b'"', at)
            end = size if quote < 0 else quote
            if not self.inside:
                self._segment(block, offset, at, end)
            if quote < 0:
                break
            at = quote + 1
            if self.inside:
                if quote + 1 == size:
                    self.inside, self.closed_at_end = False, True
                elif block[quote + 1] == QUOTE:  # an escaped quote: still inside
                    at = quote + 2
                else:
                    self.inside = False
                    self.irregular = self.irregular or block[quote + 1] not in FIELD_END
            elif quote == 0 and closed_at_start:  # an escaped pair across blocks
                self.inside = True
            else:
                self.inside = self._field_start(block, quote)
                self.irregular = self.irregular or not self.inside
        last = size - 1
        while last >= 0 and block[last] == SPACE:
            last -= 1
        if last >= 0:
            self.last_byte = block[last]
        self.tail = (self.tail + block[-2:])[-2:]

    def _field_start(self, block: bytes, quote: int) -> bool:
        """Whether the quote at `quote` starts a field: only spaces between it and the comma
        or newline before it (DuckDB skips those spaces and reads the field as quoted)."""
        before = quote - 1
        while before >= 0 and block[before] == SPACE:
            before -= 1
        return (block[before] if before >= 0 else self.last_byte) in FIELD_START

    def _segment(self, block: bytes, offset: int, at: int, end: int) -> None:
        """Count the newlines of block[at:end] (outside quotes), and the blank lines they
        end, and cut at the marks."""
        while offset + end >= self.mark:
            nl = block.find(b"\n", max(at, self.mark - 1 - offset), end)
            if nl < 0:
                break
            if at == 0 or self.blank_in_block:
                self._count_blanks(block, at, nl + 1)
            self.lines += block.count(b"\n", at, nl + 1)
            self.starts.append((offset + nl + 1, self.lines, self.blanks))
            self.mark = offset + nl + 1 + self.chunk_bytes
            at = nl + 1
        if at == 0 or self.blank_in_block:
            self._count_blanks(block, at, end)
        self.lines += block.count(b"\n", at, end)

    def _count_blanks(self, block: bytes, at: int, end: int) -> None:
        """Add the blank lines that the newlines of block[at:end] end (before `lines` counts
        those newlines)."""
        blanks = self._blank_ends(block, at, end)
        if blanks and self.blank_numbers is not None:
            self.blank_numbers += [self.lines + block.count(b"\n", at, p + 1) for p in blanks]
        self.blanks += len(blanks)

    def _blank_ends(self, block: bytes, at: int, end: int) -> list[int]:
        """Where the blank lines (LF or CRLF) whose LF is in block[at:end] end: an LF right
        after an LF, or after an LF and a CR (the line before may end in the block before).
        Rare: most blocks have none (`blank_in_block`)."""
        found = []
        if at == 0:  # the line before may end in the previous block
            if block[:1] == b"\n" and (self.tail.endswith(b"\n") or self.tail == b"\n\r"):
                found.append(0)
            if block[:2] == b"\r\n" and self.tail.endswith(b"\n"):
                found.append(1)
        if not self.blank_in_block:
            return found
        for match in BEFORE_BLANK.finditer(block, max(at - 2, 0), end):
            lf = match.end() if block[match.end()] == NEWLINE else match.end() + 1
            if lf >= at:
                found.append(lf)
        return found

    def _endings(self, block: bytes) -> None:
        if not block:
            return
        split_pair = 1 if self.ends_with_cr and block[0] == NEWLINE else 0
        pairs = block.count(b"\r\n") + split_pair
        self.crlf = self.crlf or pairs > 0
        self.bare_lf = self.bare_lf or block.count(b"\n") > pairs
        self.ends_with_cr = block[-1] == 13

    def chunks(self, data_size: int) -> list[Chunk]:
        bounds = [s for s in self.starts if s[0] < data_size]
        return [
            Chunk(
                index=i,
                start=start,
                end=(bounds[i + 1][0] if i + 1 < len(bounds) else data_size),
                lines_before=lines,
                blank_lines_before=blanks,
            )
            for i, (start, lines, blanks) in enumerate(bounds)
        ]


def _may_hold_blank_lines(path: Path, gzipped: bool) -> bool:
    """Whether a line of the file may be blank (`BLANK`, block by block with the last two
    bytes of the block before), quotes ignored: an empty line in a quoted field says yes."""
    tail = b""
    with open_data(path, gzipped) as handle:
        while block := handle.read(BLOCK_BYTES):
            data = tail + block
            if BLANK.search(data):
                return True
            tail = data[-2:]
    return False


def blank_lines(path: Path, gzipped: bool) -> list[int]:
    """The numbers of the file's blank lines on the CSV reader's count of its lines after the
    header (records and blank lines alike: the numbering of DuckDB's reject table, less the
    header), outside quoted fields; for the files with malformed records only
    (`validation.common.load_malformed`). One regex search a block for an empty line comes
    first, so that most files are not scanned quote by quote."""
    if not _may_hold_blank_lines(path, gzipped):
        return []
    bounds = RecordBounds(chunk_bytes=NO_CUTS, blank_numbers=[])
    offset = 0
    with open_data(path, gzipped) as handle:
        while block := handle.read(BLOCK_BYTES):
            bounds.feed(block, offset)
            offset += len(block)
    return bounds.blank_numbers or []

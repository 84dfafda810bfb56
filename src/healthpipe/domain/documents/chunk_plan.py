"""The documents of the chunked engine (`dataops/chunked`, docs/scaling.md "Files larger than
one Lambda can take"): the plan of a file's chunks, what each map step staged and what each
split step wrote. Both executors pass them between steps: the local one in memory, the AWS
one as JSON in S3 (a Step Functions Distributed Map reads the plan's `chunks` list).

Byte ranges are offsets in the *data* the plan was made over: the file itself, or, for a
gzip file or a file mixing CRLF and LF line endings, its uncompressed LF copy (`prepared`).
Every chunk is read as the header line (`header_bytes` bytes at the start of the data)
followed by its range, which always starts at a record start (a newline outside quotes).
"""

from __future__ import annotations

from pydantic import Field

from healthpipe.domain.documents.base import Complete, Counts


class Chunk(Complete):
    """One chunk: bytes [start, end) of the data, and `lines_before`: the records (blank
    lines and malformed records included, header excluded) before `start`, which offsets the
    record numbers the CSV reader reports for its malformed records; `blank_lines_before`:
    the blank lines among those, which the reader skips as records (a malformed record's
    source_row counts records only)."""

    index: int = Field(ge=0)
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    lines_before: int = Field(ge=0)
    blank_lines_before: int = Field(default=0, ge=0)


class ChunkPlan(Complete):
    schema_version: int = 1
    sha256: str  # of the file as stored (the dataset id), compressed or not
    size: int = Field(ge=0)  # of the file as stored
    gzipped: bool
    # the chunks refer to an uncompressed and/or LF-only copy of the file, not the file
    prepared: bool
    mixed_line_endings: bool
    data_size: int = Field(ge=0)
    header_bytes: int = Field(ge=0)
    # a quote inside an unquoted field or text after a closing quote: the CSV reader's
    # records may differ from the plan's around it, so such a file takes the single path
    irregular_quotes: bool = False
    chunk_bytes: int = Field(gt=0)
    chunks: list[Chunk]


class StagedChunk(Complete):
    """What the map step staged for one chunk: `rows` parsed records and `malformed` records
    (numbered in the whole file: offset by the chunk's `lines_before`, less the blank lines
    before each)."""

    index: int = Field(ge=0)
    rows: int = Field(ge=0)
    malformed: int = Field(ge=0)


class ChunkSplit(Complete):
    """What the split step wrote for one chunk: its part of each output and its counts.
    `csv_header_bytes` is the length of the header line at the start of each CSV part (the
    assembly keeps it from the first part only)."""

    index: int = Field(ge=0)
    rows_input: int = Field(ge=0)
    rows_valid: int = Field(ge=0)
    rows_rejected: int = Field(ge=0)
    reasons: Counts
    processed_csv_header_bytes: int = Field(ge=0)
    rejected_csv_header_bytes: int = Field(ge=0)
    # the source_row of its first and last rejected rows (None: none rejected); the rejected
    # parts concatenate in order only when these do not overlap across chunks
    # (`assemble.rejected_in_order`)
    first_rejected_row: int | None = None
    last_rejected_row: int | None = None

"""What validation takes and returns: the output paths, the result, the record-size limits
and the two conditions that send a file down another read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MALFORMED_REASON = "malformed_row"

# Records up to this size are read with small buffers (DuckDB's ordered writers keep a few
# buffers per thread, so smaller ones run faster in less memory); a file holding a longer
# record is read again with buffers for records up to MAX_RECORD_BYTES, and one longer
# than that makes the file unusable.
FAST_RECORD_BYTES = 2 * 1024 * 1024
MAX_RECORD_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class SplitPaths:
    processed_csv: Path
    processed_parquet: Path
    rejected_csv: Path


@dataclass(frozen=True)
class ValidationResult:
    rows_input: int
    rows_valid: int
    rows_rejected: int
    reasons: dict[str, int]
    users: int
    first_event: str | None
    last_event: str | None
    columns: list[str] = field(default_factory=list)


class RecordTooLong(Exception):
    """A record is longer than the buffers the file was read with."""


class MixedLineEndings(Exception):
    """DuckDB's strict parser stopped on a file mixing CRLF and LF line endings."""

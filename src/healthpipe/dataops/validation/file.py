"""Validates one vitals CSV file: the entry point, which picks how the file is read.

A file mixing CRLF and LF line endings is read from a copy with LF endings only. The
longest record is measured first (`record_scan`), since DuckDB loses a record longer than
its buffers without a trace: files holding a record longer than FAST_RECORD_BYTES are read
with larger buffers, and a file holding one longer than MAX_RECORD_BYTES is refused
(`record_too_long`). Then the staged path (`staged`: one parse into a staging Parquet
file) splits the file, unless its malformed records form more runs than it numbers; the
table path (`table`) splits those.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from healthpipe.dataops.engine import EngineLimits, connect
from healthpipe.dataops.header import Header
from healthpipe.dataops.record_scan import (
    RecordScan,
    first_record_longer_than,
    scan_records,
    with_lf_line_endings,
)
from healthpipe.dataops.validation.common import check_reserved, output_columns
from healthpipe.dataops.validation.staged import validate_staged
from healthpipe.dataops.validation.table import validate_table
from healthpipe.dataops.validation.types import (
    FAST_RECORD_BYTES,
    MAX_RECORD_BYTES,
    MixedLineEndings,
    RecordTooLong,
    SplitPaths,
    ValidationResult,
)
from healthpipe.domain.rules import RuleProfile
from healthpipe.errors import InputError


def record_bytes_for(path: Path, header: Header, scan: RecordScan) -> int:
    """The longest record the file's buffers must hold: FAST_RECORD_BYTES or
    MAX_RECORD_BYTES; InputError(`record_too_long`) when a record is longer than that."""
    longest = scan.longest
    if longest <= FAST_RECORD_BYTES:
        return FAST_RECORD_BYTES
    if longest <= MAX_RECORD_BYTES:
        return MAX_RECORD_BYTES
    # The scan may measure long where a literal quote sits in an unquoted field: read it.
    number = first_record_longer_than(path, header.gzipped, MAX_RECORD_BYTES)
    if number is None:
        return MAX_RECORD_BYTES
    raise InputError(
        f"data record {number} is longer than {MAX_RECORD_BYTES // (1024 * 1024)} MB, the "
        "longest record healthpipe reads; shorten or remove it",
        code="record_too_long",
    )


@dataclass(frozen=True)
class _Split:
    """What one file is validated against and where its split goes."""

    profile: RuleProfile
    out: SplitPaths
    now_iso: str
    limits: EngineLimits

    def read(self, path: Path, header: Header, scan: RecordScan) -> ValidationResult:
        """The split, with buffers for the longest record the scan measured (and for
        MAX_RECORD_BYTES when DuckDB finds a longer one all the same)."""
        try:
            result = self._split(path, header, record_bytes_for(path, header, scan))
        except RecordTooLong:
            result = self._split(path, header, MAX_RECORD_BYTES)
        return ValidationResult(**{**result.__dict__, "columns": output_columns(header)})

    def _split(self, path: Path, header: Header, record_bytes: int) -> ValidationResult:
        """The staged path, or the table path when the staged one declines the file."""
        for split in (validate_staged, validate_table):
            con = connect(self.limits)
            try:
                # Rows keep the file's order from the scan to the outputs: no sort of the file.
                con.execute("SET preserve_insertion_order = true")
                result = split(
                    con, path, header, self.profile, self.out, self.now_iso, record_bytes
                )
            finally:
                con.close()
            if result is not None:
                return result
        raise AssertionError("the table path always returns a result")


def validate_file(
    path: Path,
    header: Header,
    profile: RuleProfile,
    out: SplitPaths,
    *,
    now_iso: str,
    limits: EngineLimits,
) -> ValidationResult:
    """Validate `path` under `profile`, write the split, and count every row and reason.
    A file mixing CRLF and LF line endings is read from a copy with LF endings only."""
    check_reserved(header)
    split = _Split(profile, out, now_iso, limits)
    scan = scan_records(path, header.gzipped)
    if not scan.mixed_endings:
        try:
            return split.read(path, header, scan)
        except MixedLineEndings:
            pass
    copy = out.processed_csv.with_name(f"{out.processed_csv.stem}.lf.csv")
    try:
        with_lf_line_endings(path, header.gzipped, copy)
        plain = replace(header, gzipped=False)
        try:
            return split.read(copy, plain, scan_records(copy, gzipped=False))
        except MixedLineEndings:
            reason = "not a readable CSV file: the CSV parser reached an invalid state"
            raise InputError(reason, code="not_csv") from None
    finally:
        copy.unlink(missing_ok=True)

"""Erasure's file work: copies of a CSV or Parquet file without one participant's rows.

CSV files (raw uploads, processed and rejected CSVs) are filtered record by record on their
bytes, never re-serialised, so every record that stays is byte for byte what it was. A
record ends at a newline outside quotes (quote parity, as `record_scan` counts it), so a
quoted multi-line cell stays one record. A record goes when the participant's id appears in
it as a whole token: the id not preceded or followed by a letter, digit, `_`, `-` or `.`
(so `user_01` never takes `user_010`'s rows, and a malformed row that holds the id anywhere
goes too). The header (the first record) always stays.

Parquet files (the processed readings and the anomalies) are rewritten by DuckDB without
the rows whose `user_id` is the participant's, in the file's order, with the compression
ingest and analyze write (zstd).
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from healthpipe.dataops.engine import EngineLimits, connect, source_literal
from healthpipe.dataops.record_scan import open_data, records
from healthpipe.domain.validation_sql import quote_literal

TOKEN_EDGE = rb"A-Za-z0-9_.\-"


def id_pattern(user_id: str) -> re.Pattern[bytes]:
    """The participant's id as a whole token in a record's bytes (see the module docstring)."""
    token = re.escape(user_id.encode())
    return re.compile(rb"(?<![" + TOKEN_EDGE + rb"])" + token + rb"(?![" + TOKEN_EDGE + rb"])")


def _open_write(path: Path, gzipped: bool) -> BinaryIO:
    return gzip.open(path, "wb") if gzipped else path.open("wb")  # type: ignore[return-value]


def filter_csv(
    source: Path,
    target: Path | None,
    user_id: str,
    *,
    gzipped: bool = False,
    on_removed: Callable[[bytes, bytes], None] | None = None,
) -> int:
    """Copy `source` to `target` (gzip in, gzip out) without the records that hold `user_id`;
    the number of records left out. With `target` None only counts. `on_removed(header,
    record)` sees each record left out (for the reasons of rejected rows)."""
    pattern = id_pattern(user_id)
    needle = user_id.encode()
    removed = 0
    with open_data(source, gzipped) as handle:
        out = _open_write(target, gzipped) if target is not None else None
        try:
            scanned = records(handle)
            header = next(scanned, b"")
            if out is not None:
                out.write(header)
            for record in scanned:
                if needle in record and pattern.search(record):
                    removed += 1
                    if on_removed is not None:
                        on_removed(header, record)
                elif out is not None:
                    out.write(record)
        finally:
            if out is not None:
                out.close()
    return removed


def cells(header: bytes, record: bytes) -> dict[str, str]:
    """One CSV record read against its header (for the reasons of a removed rejected row)."""
    names = next(csv.reader(io.StringIO(header.decode("utf-8", "replace"))), [])
    values = next(csv.reader(io.StringIO(record.decode("utf-8", "replace"))), [])
    return dict(zip(names, values, strict=False))


def count_parquet_rows(source: Path, user_id: str, limits: EngineLimits) -> int:
    """How many rows of a Parquet file have `user_id` (0 when it has no such column)."""
    con = connect(limits)
    try:
        relation = _parquet(source)
        columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
        if "user_id" not in columns:
            return 0
        found = con.execute(
            f"SELECT count(*) FROM {relation} WHERE user_id = ?", [user_id]
        ).fetchone()
        return int(found[0]) if found else 0
    finally:
        con.close()


def filter_parquet(source: Path, target: Path, user_id: str, limits: EngineLimits) -> None:
    """Write `target`: `source`'s rows, in order, except those whose `user_id` is the id."""
    con = connect(limits)
    try:
        con.execute("SET preserve_insertion_order = true")
        relation = _parquet(source)
        con.execute(
            f"COPY (SELECT * FROM {relation} WHERE user_id IS DISTINCT FROM "
            f"{quote_literal(user_id)}) TO {quote_literal(str(target))} "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
    finally:
        con.close()


def distinct_user_ids(source: Path, limits: EngineLimits) -> list[str]:
    """The distinct `user_id`s of a Parquet file (to find the id behind a pseudonym)."""
    con = connect(limits)
    try:
        relation = _parquet(source)
        rows = con.execute(
            f"SELECT DISTINCT user_id FROM {relation} WHERE user_id IS NOT NULL"
        ).fetchall()
        return [str(row[0]) for row in rows]
    finally:
        con.close()


def _parquet(source: Path) -> str:
    """The file as it is: a local store hands it over in place, and the partition folders
    of its path (`dt=…/`, `pb=…/`) must not become columns of a rewritten copy."""
    return f"read_parquet({source_literal(source)}, hive_partitioning = false)"

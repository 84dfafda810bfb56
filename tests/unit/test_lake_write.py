"""dataops/lake_write.py: one processed file split by participant bucket and reading day."""

from __future__ import annotations

from pathlib import Path

import duckdb

from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.lake_write import LakePart, utc_day, write_lake_parts

ROWS = """
SELECT * FROM (VALUES
    (1, TIMESTAMPTZ '2025-06-01 23:59:59+00', 'u1', 70.0),
    (2, TIMESTAMPTZ '2025-06-02 00:00:00+00', 'u1', 71.0),
    (3, TIMESTAMPTZ '2025-06-02 01:30:00+02', 'u2', 72.0),
    (4, TIMESTAMPTZ '2025-06-02 08:00:00+00', 'u3', 73.0)
) t(source_row, event_time, user_id, heart_rate)
"""
BUCKETS = {"u1": 7, "u2": 7, "u3": 63}


def processed(tmp_path: Path, sql: str) -> Path:
    path = tmp_path / "processed" / "dt=2026-11-30" / "day1-0123456789abcdef.parquet"
    path.parent.mkdir(parents=True)
    duckdb.sql(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
    return path


def rows(part: LakePart) -> list[tuple[object, ...]]:
    sql = f"SELECT source_row, user_id FROM read_parquet('{part.path}', hive_partitioning = false)"
    return sorted(duckdb.sql(sql).fetchall())


def test_rows_go_to_their_participant_s_bucket_and_their_utc_reading_day(
    tmp_path: Path,
) -> None:
    parts = write_lake_parts(
        processed(tmp_path, ROWS), tmp_path / "out", BUCKETS.__getitem__, EngineLimits(threads=2)
    )
    found = {(p.bucket, p.day): rows(p) for p in parts}
    assert found == {
        (7, "2025-06-01"): [(1, "u1"), (3, "u2")],  # row 3: 01:30 at +02 is 23:30 UTC
        (7, "2025-06-02"): [(2, "u1")],
        (63, "2025-06-02"): [(4, "u3")],
    }
    # the file keeps the processed columns (not the `dt=` of the processed file's own path);
    # the partitions are in the path only
    described = duckdb.sql(
        f"DESCRIBE SELECT * FROM read_parquet('{parts[0].path}', hive_partitioning = false)"
    ).fetchall()
    assert [r[0] for r in described] == ["source_row", "event_time", "user_id", "heart_rate"]
    assert [p.path.parent.relative_to(tmp_path / "out").as_posix() for p in parts] == [
        "pb=07/dt=2025-06-01",
        "pb=07/dt=2025-06-02",
        "pb=63/dt=2025-06-02",
    ]


def test_a_file_without_rows_writes_nothing(tmp_path: Path) -> None:
    empty = processed(tmp_path, f"{ROWS} WHERE false")
    assert write_lake_parts(empty, tmp_path / "out", BUCKETS.__getitem__, EngineLimits()) == []


def test_utc_day_is_the_date_duckdb_casts_to_in_utc() -> None:
    """The ICU-free day equals `CAST(... AS DATE)` at UTC, at a day's edges and before 1970."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        found = con.execute(
            f"SELECT t, {utc_day('t')}, CAST(t AS DATE), {utc_day('t')} = CAST(t AS DATE) "
            "FROM (VALUES (TIMESTAMPTZ '2025-06-01 23:59:59.999999+00'), "
            "(TIMESTAMPTZ '2025-06-02 00:00:00+00'), (TIMESTAMPTZ '2025-06-02 01:30:00+02'), "
            "(TIMESTAMPTZ '1969-12-31 23:59:59.999999+00'), "
            "(TIMESTAMPTZ '1970-01-01 00:00:00+00'), "
            "(TIMESTAMPTZ '1900-03-01 00:00:00.000001+00')) v(t)"
        ).fetchall()
    finally:
        con.close()
    assert [row[3] for row in found] == [True] * 6, found

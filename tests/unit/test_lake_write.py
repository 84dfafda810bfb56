"""dataops/lake_write.py: one processed file split by participant bucket and reading day."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from healthpipe.dataops import lake_write
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
    assert ["/".join(p.path.parent.parts[-2:]) for p in parts] == [
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


def test_buckets_are_cut_into_groups_of_consecutive_buckets_by_rows() -> None:
    rows = {9: 5, 0: 40, 1: 70, 2: 10, 63: 200}
    assert lake_write._bucket_groups(rows, 100) == {0: 0, 1: 1, 2: 1, 9: 1, 63: 2}
    assert lake_write._bucket_groups({}, 100) == {}


MANY = """
SELECT i AS source_row, TIMESTAMPTZ '2025-06-01 00:00:00+00' + to_hours(i % 50) AS event_time,
    'u' || (i % 7) AS user_id, 60.0 + i % 40 AS heart_rate
FROM range(1, 701) r(i)
"""


def test_groups_on_two_connections_write_each_partition_once_in_row_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lake_write, "ROWS_PER_COPY", 150)  # 7 participants of 100 rows
    parts = write_lake_parts(
        processed(tmp_path, MANY),
        tmp_path / "out",
        lambda u: int(u[1:]) * 9,
        EngineLimits(threads=2),
    )
    assert len({p.path.parent.parent.parent for p in parts}) == 7  # one group per bucket
    assert [(p.bucket, p.day) for p in parts] == sorted(
        (b * 9, f"2025-06-0{d}") for b in range(7) for d in (1, 2, 3)
    )
    for part in parts:
        sql = f"SELECT source_row FROM read_parquet('{part.path}', hive_partitioning = false)"
        found = [row[0] for row in duckdb.sql(sql).fetchall()]
        expected = [
            i
            for i in range(1, 701)
            if i % 7 * 9 == part.bucket and f"{1 + (i % 50) // 24}" == part.day[-1]
        ]
        assert found == expected


def test_a_failing_group_fails_the_whole_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lake_write, "ROWS_PER_COPY", 150)
    real = lake_write._copy_groups

    def fail_on_group_3(source: str, table: Any, groups: list[int], *args: Any) -> None:
        if 3 in groups:
            raise duckdb.IOException("disk full")
        real(source, table, groups, *args)

    monkeypatch.setattr(lake_write, "_copy_groups", fail_on_group_3)
    with pytest.raises(duckdb.IOException, match="disk full"):
        write_lake_parts(
            processed(tmp_path, MANY),
            tmp_path / "out",
            lambda u: int(u[1:]),
            EngineLimits(threads=2),
        )

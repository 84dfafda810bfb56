"""dataops/lake_write.py: one processed file split by participant bucket and reading day."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from healthpipe.dataops import lake_write
from healthpipe.dataops.engine import EngineLimits, connect
from healthpipe.dataops.lake_write import LakeCut, LakePart, utc_day, write_lake_parts
from healthpipe.domain.identity import lake_readings_key

ROWS = """
SELECT * FROM (VALUES
    (1, TIMESTAMPTZ '2025-06-01 23:59:59+00', 'u1', 70.0),
    (2, TIMESTAMPTZ '2025-06-02 00:00:00+00', 'u1', 71.0),
    (3, TIMESTAMPTZ '2025-06-02 01:30:00+02', 'u2', 72.0),
    (4, TIMESTAMPTZ '2025-06-02 08:00:00+00', 'u3', 73.0)
) t(source_row, event_time, user_id, heart_rate)
"""
BUCKETS = {"u1": 7, "u2": 7, "u3": 63}


def processed(tmp_path: Path, sql: str, row_group_rows: int = 122_880) -> Path:
    path = tmp_path / "processed" / "dt=2026-11-30" / "day1-0123456789abcdef.parquet"
    path.parent.mkdir(parents=True)
    duckdb.sql(f"COPY ({sql}) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE {row_group_rows})")
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
    # the local folders are DuckDB's partitions of the numbers; the keys are the lake's
    assert ["/".join(p.path.parent.parts[-2:]) for p in parts] == [
        "pb=7/dt=2025-06-01",
        "pb=7/dt=2025-06-02",
        "pb=63/dt=2025-06-02",
    ]
    assert [lake_readings_key(p.bucket, p.day, "d1") for p in parts] == [
        "lake/readings/pb=07/dt=2025-06-01/d1.parquet",
        "lake/readings/pb=07/dt=2025-06-02/d1.parquet",
        "lake/readings/pb=63/dt=2025-06-02/d1.parquet",
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


D1, D2, D3 = date(2025, 6, 1), date(2025, 6, 2), date(2025, 6, 3)


def cut_keys(cuts: list[LakeCut]) -> list[tuple[int, int, tuple[date, date] | None]]:
    assert [c.index for c in cuts] == list(range(len(cuts)))
    return [(c.first, c.last, c.days) for c in cuts]


def test_small_buckets_are_cut_into_runs_of_consecutive_buckets_by_rows() -> None:
    rows = {(9, D1): 5, (0, D1): 40, (1, D1): 30, (1, D2): 40, (2, D1): 10, (63, D3): 90}
    assert cut_keys(lake_write._cuts(rows, 100)) == [(0, 0, None), (1, 9, None), (63, 63, None)]
    assert lake_write._cuts({}, 100) == []


def test_a_bucket_above_the_limit_is_cut_by_consecutive_days() -> None:
    # bucket 5 has 260 rows over three days: a 50M-row file's buckets are all like it, and
    # one COPY of a whole bucket filled the lake's memory (docs/scaling.md)
    rows = {(4, D1): 10, (5, D1): 60, (5, D2): 70, (5, D3): 130, (6, D2): 20}
    assert cut_keys(lake_write._cuts(rows, 100)) == [
        (4, 4, None),
        (5, 5, (D1, D1)),  # 60 + 70 > 100
        (5, 5, (D2, D2)),
        (5, 5, (D3, D3)),  # one day above the limit is a cut alone
        (6, 6, None),
    ]
    rows = {(5, D1): 30, (5, D2): 30, (5, D3): 50}
    assert cut_keys(lake_write._cuts(rows, 100)) == [(5, 5, (D1, D2)), (5, 5, (D3, D3))]


def test_each_partition_is_in_exactly_one_cut() -> None:
    rows = {
        (b, date(2025, 6, d)): (b * 7 + d * 13) % 50 + 1 for b in range(64) for d in (1, 2, 3, 9)
    }
    rows |= {(b, date(2025, 7, d)): 40 for b in (10, 11) for d in range(1, 20)}
    cuts = lake_write._cuts(rows, 120)
    for key in rows:
        bucket, day = key
        owners = [
            c
            for c in cuts
            if c.first <= bucket <= c.last and (c.days is None or c.days[0] <= day <= c.days[1])
        ]
        assert len(owners) == 1, (key, owners)
    # a cut holds at most the limit, unless it is one bucket's single day
    for c in cuts:
        inside = [
            n
            for (b, d), n in rows.items()
            if c.first <= b <= c.last and (c.days is None or c.days[0] <= d <= c.days[1])
        ]
        assert sum(inside) <= 120 or len(inside) == 1


MANY = """
SELECT i AS source_row, TIMESTAMPTZ '2025-06-01 00:00:00+00' + to_hours(i % 50) AS event_time,
    'u' || (i % 7) AS user_id, 60.0 + i % 40 AS heart_rate
FROM range(1, 701) r(i)
"""


def test_cuts_on_two_connections_write_each_partition_once_with_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lake_write, "ROWS_PER_COPY", 150)  # 7 participants of 100 rows
    parts = write_lake_parts(
        processed(tmp_path, MANY),
        tmp_path / "out",
        lambda u: int(u[1:]) * 9,
        EngineLimits(threads=2),
    )
    assert len({p.path.parent.parent.parent for p in parts}) == 7  # one cut per bucket
    assert [(p.bucket, p.day) for p in parts] == sorted(
        (b * 9, f"2025-06-0{d}") for b in range(7) for d in (1, 2, 3)
    )
    for part in parts:
        expected = [
            i
            for i in range(1, 701)
            if i % 7 * 9 == part.bucket and f"{1 + (i % 50) // 24}" == part.day[-1]
        ]
        # the order of the rows within a file is not specified (docs/lake.md): DuckDB's
        # partitioned COPY does not keep it, even on one thread
        assert sorted(source_rows(part)) == expected


def test_a_bucket_cut_by_days_writes_each_day_once_with_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every participant in one bucket (100 rows each over 3 days): cut by day at 250 rows
    monkeypatch.setattr(lake_write, "ROWS_PER_COPY", 250)
    parts = write_lake_parts(
        processed(tmp_path, MANY), tmp_path / "out", lambda u: 3, EngineLimits(threads=2)
    )
    assert len({p.path.parent.parent.parent for p in parts}) == 3  # one cut per day
    assert [(p.bucket, p.day) for p in parts] == [(3, f"2025-06-0{d}") for d in (1, 2, 3)]
    for part in parts:
        expected = [i for i in range(1, 701) if f"{1 + (i % 50) // 24}" == part.day[-1]]
        assert sorted(source_rows(part)) == expected


def source_rows(part: LakePart) -> list[int]:
    sql = f"SELECT source_row FROM read_parquet('{part.path}', hive_partitioning = false)"
    return [int(row[0]) for row in duckdb.sql(sql).fetchall()]


def test_a_failing_cut_fails_the_whole_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lake_write, "ROWS_PER_COPY", 150)
    real = lake_write._copy_cuts

    def fail_on_cut_3(source: str, table: Any, cuts: list[tuple[LakeCut, Any]], *args: Any) -> None:
        if any(cut.index == 3 for cut, _ in cuts):
            raise duckdb.IOException("disk full")
        real(source, table, cuts, *args)

    monkeypatch.setattr(lake_write, "_copy_cuts", fail_on_cut_3)
    with pytest.raises(duckdb.IOException, match="disk full"):
        write_lake_parts(
            processed(tmp_path, MANY),
            tmp_path / "out",
            lambda u: int(u[1:]),
            EngineLimits(threads=2),
        )


def groups_of(*spans: tuple[date, date] | None, rows: int = 100) -> list[Any]:
    return [lake_write.RowGroupStats(rows, span) for span in spans]


def test_day_cuts_hold_each_partition_once_and_split_a_large_day_by_buckets() -> None:
    rows = {(b, d): 30 for b in (0, 5, 9) for d in (D1, D2)} | {(b, D3): 60 for b in (0, 5, 9)}
    assert cut_keys(lake_write._day_cuts(rows, 100)) == [
        (0, 9, (D1, D1)),  # 90 rows; with D2's 90 above 100
        (0, 9, (D2, D2)),
        (0, 0, (D3, D3)),  # D3 (180 rows) alone, by consecutive buckets: 60, 60 + 60 > 100
        (5, 5, (D3, D3)),
        (9, 9, (D3, D3)),
    ]
    assert lake_write._day_cuts({}, 100) == []
    many = {
        (b, date(2025, 6, d)): (b * 7 + d * 13) % 50 + 1 for b in range(64) for d in range(1, 9)
    }
    cuts = lake_write._day_cuts(many, 120)
    for bucket, day in many:
        assert sum(lake_write._holds(c, bucket, day) for c in cuts) == 1, (bucket, day)


def test_a_file_in_time_order_is_cut_by_days_and_one_in_no_order_by_buckets() -> None:
    rows = {(b, d): 50 for b in range(8) for d in (D1, D2, D3)}  # 400 rows a day
    ordered = groups_of((D1, D1), (D1, D2), (D2, D2), (D3, D3), rows=300)
    shuffled = groups_of((D1, D3), (D1, D3), (D1, D3), (D1, D3), rows=300)
    by_buckets, by_days = lake_write._cuts(rows, 600), lake_write._day_cuts(rows, 600)
    assert cut_keys(by_buckets) == [(0, 3, None), (4, 7, None)]
    assert cut_keys(by_days) == [(0, 7, (D1, D1)), (0, 7, (D2, D2)), (0, 7, (D3, D3))]
    # in time order, the day cuts read 2 + 2 + 1 row groups, the bucket cuts the whole file
    # twice; in no order, each cut reads the whole file: the fewer cuts read less
    assert lake_write._rows_read(by_days, ordered) == 1500
    assert lake_write._rows_read(by_buckets, ordered) == 2400
    assert lake_write._fewest_rows_read(rows, 600, ordered) == by_days
    assert lake_write._rows_read(by_days, shuffled) == 3600
    assert lake_write._fewest_rows_read(rows, 600, shuffled) == by_buckets
    # without statistics nothing is skipped; a tie keeps the bucket cuts
    assert lake_write._fewest_rows_read(rows, 600, groups_of(None, None)) == by_buckets
    assert lake_write._fewest_rows_read(rows, 400, shuffled) == by_days  # 3 cuts against 4


def test_cuts_are_dealt_so_that_each_connection_has_as_much_work() -> None:
    cuts = [LakeCut(i, i, i) for i in range(6)]
    cost = {0: 90, 1: 10, 2: 90, 3: 10, 4: 90, 5: 10}
    shares = lake_write._shares(cuts, 2, lambda c: cost[c.index])
    assert sorted(c.index for share in shares for c in share) == list(range(6))
    loads = sorted(sum(cost[c.index] for c in share) for share in shares)
    assert loads == [120, 180]  # dealt in turn: 270 against 30


def copies_seen(monkeypatch: pytest.MonkeyPatch) -> list[tuple[LakeCut, Any]]:
    """The cuts the lake write copies (with the participants each names), as it copies them."""
    copied: list[tuple[LakeCut, Any]] = []
    real = lake_write._copy_cuts

    def seen(source: str, table: Any, cuts: list[tuple[LakeCut, Any]], *args: Any) -> None:
        copied.extend(cuts)
        real(source, table, cuts, *args)

    monkeypatch.setattr(lake_write, "_copy_cuts", seen)
    return copied


ORDERED = """
SELECT i AS source_row, TIMESTAMPTZ '2025-06-01 00:00:00+00' + to_seconds(i * 36) AS event_time,
    'u' || (i % 5) AS user_id, 60.0 + i % 40 AS heart_rate
FROM range(1, 24001) r(i)
"""


def test_a_file_in_time_order_is_cut_by_days_and_writes_every_row_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 24,000 readings over 10 days in row groups of 2,048 (20.5 hours): a day's COPY reads
    # two or three of the twelve
    path = processed(tmp_path, ORDERED, 2048)
    con = connect(EngineLimits(threads=1))
    try:
        groups = lake_write._row_group_stats(con, path)
    finally:
        con.close()
    assert [g.rows for g in groups] == [2048] * 11 + [24000 - 11 * 2048]
    assert groups[0].days == (date(2025, 6, 1), date(2025, 6, 1))
    assert groups[1].days == (date(2025, 6, 1), date(2025, 6, 2))
    monkeypatch.setattr(lake_write, "ROWS_PER_COPY", 5000)
    copied = copies_seen(monkeypatch)
    parts = write_lake_parts(
        path, tmp_path / "out", lambda u: int(u[1:]) * 3, EngineLimits(threads=2)
    )
    # two days a cut (2,400 readings a day; the last reading alone on the eleventh)
    assert len(copied) == 5 and all(c.days is not None for c, _ in copied)
    expected = duckdb.sql(
        f"SELECT (source_row % 5) * 3 AS pb, CAST(CAST(event_time AS DATE) AS VARCHAR) AS dt, "
        f"list(source_row ORDER BY source_row) FROM ({ORDERED}) GROUP BY ALL ORDER BY pb, dt"
    ).fetchall()
    assert [(p.bucket, p.day, sorted(source_rows(p))) for p in parts] == [
        (pb, dt, rows) for pb, dt, rows in expected
    ]


def test_a_file_in_participant_order_is_cut_by_buckets_that_read_only_their_row_groups() -> None:
    # 8 participants (one a bucket) of 150 readings over 3 days, the file in participant
    # order: each row group holds two participants' readings of every day
    rows = {(b, d): 50 for b in range(8) for d in (D1, D2, D3)}  # 400 readings a day
    members = {b: [f"u{b}"] for b in range(8)}
    by_user = [
        lake_write.RowGroupStats(300, (D1, D3), (f"u{2 * i}", f"u{2 * i + 1}")) for i in range(4)
    ]
    by_buckets, by_days = lake_write._cuts(rows, 400), lake_write._day_cuts(rows, 400)
    assert cut_keys(by_buckets) == [(0, 1, None), (2, 3, None), (4, 5, None), (6, 7, None)]
    assert cut_keys(by_days) == [(0, 7, (D1, D1)), (0, 7, (D2, D2)), (0, 7, (D3, D3))]
    # a cut that names its participants reads only the row group holding them: the bucket
    # cuts read the file once; each day cut names everyone and reads it whole
    assert lake_write._rows_read(by_buckets, by_user, members) == 1200
    assert lake_write._rows_read(by_days, by_user, members) == 3600
    assert lake_write._fewest_rows_read(rows, 400, by_user, members) == by_buckets
    # not knowing the participants, the fewer cuts looked cheaper: the 50M uniform file's
    # 209 day cuts each read all 47.5M rows (2.2 CPU-s a COPY)
    assert lake_write._fewest_rows_read(rows, 400, by_user) == by_days
    # too many participants to name: none are, and nothing is skipped for them
    assert lake_write._named_users(LakeCut(0, 0, 7), members) == [f"u{b}" for b in range(8)]
    many = {b: [f"u{b}-{i}" for i in range(1100)] for b in range(8)}  # 2,200 a cut
    assert lake_write._named_users(LakeCut(0, 0, 7), many) is None
    assert lake_write._rows_read(by_buckets, by_user, many) == 4800


BY_PARTICIPANT = """
SELECT i AS source_row,
    TIMESTAMPTZ '2025-06-01 00:00:00+00' + to_minutes((i % 3000) * 4) AS event_time,
    'u' || (i // 3000) AS user_id, 60.0 + i % 40 AS heart_rate
FROM range(0, 24000) r(i)
"""


def test_a_file_in_participant_order_names_each_cut_s_participants_and_writes_every_row_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 8 participants of 3,000 readings over 8.3 days, one after the other (an export per
    # participant), in row groups of 2,048: a participant's cut reads two or three of twelve
    path = processed(tmp_path, BY_PARTICIPANT, 2048)
    monkeypatch.setattr(lake_write, "ROWS_PER_COPY", 4000)
    copied = copies_seen(monkeypatch)
    parts = write_lake_parts(path, tmp_path / "out", lambda u: int(u[1:]), EngineLimits(threads=2))
    # one participant a cut (3,000 readings; two are 6,000 > 4,000), each named
    assert sorted((c.first, c.last, c.days, named) for c, named in copied) == [
        (b, b, None, [f"u{b}"]) for b in range(8)
    ]
    expected = duckdb.execute(
        f"SELECT CAST(user_id[2:] AS INTEGER) AS pb, "
        f"CAST(CAST(event_time AS DATE) AS VARCHAR) AS dt, list(source_row ORDER BY source_row) "
        f"FROM ({BY_PARTICIPANT}) GROUP BY ALL ORDER BY pb, dt"
    ).fetchall()
    assert [(p.bucket, p.day, sorted(source_rows(p))) for p in parts] == [
        (pb, dt, rows) for pb, dt, rows in expected
    ]

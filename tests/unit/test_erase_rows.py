"""Erasure's CSV filter keeps every other record byte for byte; whole-token id matching."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.erase_rows import (
    cells,
    count_parquet_rows,
    distinct_user_ids,
    filter_csv,
    filter_parquet,
    id_pattern,
)
from healthpipe.stages.erase import dataset_of, may_hold, row_store_of

HEADER = b"event_time,user_id,heart_rate,note\r\n"
KEEP = [
    b"2025-06-01T00:00:00Z,u-10,70,plain\r\n",
    b'2025-06-01T00:01:00Z,u-2,71,"a quoted\nnote, on two lines"\n',  # LF inside CRLF file
    b"2025-06-01T00:02:00Z,u-1x,72,\r\n",
]
GONE = [
    b"2025-06-01T00:03:00Z,u-1,187,\r\n",
    b'2025-06-01T00:04:00Z,"u-1",73,"multi\nline"\r\n',
    b"2025-06-01T00:05:00Z,oops,u-1,74,x,y\r\n",  # malformed: the id in another column
]


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        (b"x,u-1,y", True),
        (b"x,'u-1,y", True),  # formula-safe prefix
        (b'x,"u-1"', True),
        (b"x,u-10,y", False),
        (b"x,au-1,y", False),
        (b"x,u-1.5,y", False),
        (b"x,u-1-b,y", False),
    ],
)
def test_the_id_matches_only_as_a_whole_token(text: bytes, holds: bool) -> None:
    assert bool(id_pattern("u-1").search(text)) is holds


def test_other_records_stay_byte_for_byte_and_theirs_go(tmp_path: Path) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_bytes(HEADER + KEEP[0] + GONE[0] + KEEP[1] + GONE[1] + KEEP[2] + GONE[2])
    seen: list[bytes] = []
    removed = filter_csv(source, target, "u-1", on_removed=lambda _h, r: seen.append(r))
    assert removed == 3 and seen == GONE
    assert target.read_bytes() == HEADER + b"".join(KEEP)
    assert filter_csv(source, None, "u-1") == 3  # a count alone writes nothing


def test_a_gzipped_file_is_filtered_and_written_gzipped(tmp_path: Path) -> None:
    source, target = tmp_path / "in.csv.gz", tmp_path / "out.csv.gz"
    source.write_bytes(gzip.compress(HEADER + KEEP[0] + GONE[0]))
    assert filter_csv(source, target, "u-1", gzipped=True) == 1
    assert gzip.decompress(target.read_bytes()) == HEADER + KEEP[0]


def test_the_header_stays_even_when_it_names_the_id(tmp_path: Path) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_bytes(b"u-1,b\n1,2\n")
    assert filter_csv(source, target, "u-1") == 0
    assert target.read_bytes() == b"u-1,b\n1,2\n"


def test_a_removed_rejected_row_is_read_against_its_header() -> None:
    header = b"source_row,reject_reason,user_id\n"
    assert cells(header, b"4,invalid_spo2;duplicate,u-1\n")["reject_reason"] == (
        "invalid_spo2;duplicate"
    )


@pytest.mark.parametrize(
    ("key", "dataset"),
    [
        ("processed/csv/dt=2026-11-30/day1-adfd41a29b91ffdb.csv", "adfd41a29b91ffdb"),
        ("processed/parquet/dt=2026-11-30/pb=07/day1-adfd41a29b91ffdb.parquet", "adfd41a29b91ffdb"),
        ("rejected/dt=2026-11-30/day1-adfd41a29b91ffdb_rejected.csv", "adfd41a29b91ffdb"),
        ("analyzed/adfd41a29b91ffdb_anomalies.parquet", "adfd41a29b91ffdb"),
        ("lake/readings/pb=07/dt=2025-06-01/adfd41a29b91ffdb.parquet", "adfd41a29b91ffdb"),
        ("raw/day1.csv", None),
    ],
)
def test_the_dataset_of_an_output_key(key: str, dataset: str | None) -> None:
    assert dataset_of(key) == dataset


@pytest.mark.parametrize(
    ("key", "store"),
    [
        ("raw/day1.csv.gz", "raw"),
        ("processed/csv/dt=2026-11-30/day1-adfd41a29b91ffdb.csv", "processed_csv"),
        (
            "processed/parquet/dt=2026-11-30/pb=07/day1-adfd41a29b91ffdb.parquet",
            "processed_parquet",
        ),
        ("rejected/dt=2026-11-30/day1-adfd41a29b91ffdb_rejected.csv", "rejected"),
        ("analyzed/adfd41a29b91ffdb_anomalies.parquet", "findings"),
        ("lake/readings/pb=07/dt=2025-06-01/adfd41a29b91ffdb.parquet", "lake"),
        ("work/adfd41a29b91ffdb/part-0001.csv", "other"),
        ("analyzed/adfd41a29b91ffdb.json", None),
        ("manifests/adfd41a29b91ffdb.json", None),
        ("reports/history/P-53ed8e0916b346bf.html", None),
        ("erasures/20261130T230913Z-P-53ed8e0916b346bf.json", None),
    ],
)
def test_every_row_file_of_the_bucket_has_a_store(key: str, store: str | None) -> None:
    assert row_store_of(key) == store


@pytest.mark.parametrize(
    ("key", "bucket", "read"),
    [
        ("processed/parquet/dt=2026-11-30/pb=07/d-adfd41a29b91ffdb.parquet", 7, True),
        ("processed/parquet/dt=2026-11-30/pb=08/d-adfd41a29b91ffdb.parquet", 7, False),
        ("processed/parquet/dt=2026-11-30/d-adfd41a29b91ffdb.parquet", 7, True),
        ("processed/parquet/dt=2026-11-30/pb=08/d-adfd41a29b91ffdb.parquet", None, True),
        ("lake/readings/pb=07/dt=2025-06-01/adfd41a29b91ffdb.parquet", 7, True),
        ("lake/readings/pb=08/dt=2025-06-01/adfd41a29b91ffdb.parquet", 7, False),
    ],
)
def test_another_participant_bucket_is_not_read(key: str, bucket: int | None, read: bool) -> None:
    assert may_hold(key, bucket) is read


def test_a_rewritten_parquet_keeps_its_columns_under_a_partition_path(tmp_path: Path) -> None:
    """A local store hands erasure the file in place (`…/pb=07/dt=2025-06-01/x.parquet`):
    the partition folders must not become columns of the rewritten file."""
    import duckdb

    folder = tmp_path / "lake" / "readings" / "pb=07" / "dt=2025-06-01"
    folder.mkdir(parents=True)
    source, target = folder / "adfd41a29b91ffdb.parquet", tmp_path / "erased.parquet"
    duckdb.sql(
        "COPY (SELECT * FROM (VALUES (1, 'u1'), (2, 'u2')) t(source_row, user_id)) "
        f"TO '{source}' (FORMAT parquet)"
    )
    limits = EngineLimits(threads=1)
    assert count_parquet_rows(source, "u1", limits) == 1
    assert sorted(distinct_user_ids(source, limits)) == ["u1", "u2"]
    filter_parquet(source, target, "u1", limits)
    written = duckdb.sql(f"SELECT * FROM read_parquet('{target}', hive_partitioning = false)")
    assert written.columns == ["source_row", "user_id"]
    assert written.fetchall() == [(2, "u2")]

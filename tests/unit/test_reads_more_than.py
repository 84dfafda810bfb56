"""`header.reads_more_than`: the CSV bytes validation reads, which route a file to the chunked
engine (stages/ingest.py) — a gzip's uncompressed size, not its compressed one."""

from __future__ import annotations

import gzip
from pathlib import Path

from healthpipe.dataops.header import reads_more_than

CSV = b"event_time,user_id,heart_rate\n" + b"2025-06-01T00:00:00Z,u1,70\n" * 400  # 10,830 bytes


def test_a_plain_file_is_its_size(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_bytes(CSV)
    assert reads_more_than(path, len(CSV) - 1, gzipped=False)
    assert not reads_more_than(path, len(CSV), gzipped=False)


def test_a_gzip_is_its_uncompressed_size(tmp_path: Path) -> None:
    path = tmp_path / "v.csv.gz"
    path.write_bytes(gzip.compress(CSV))
    assert path.stat().st_size < 1000 < len(CSV)
    assert reads_more_than(path, 1000, gzipped=True)
    assert reads_more_than(path, len(CSV) - 1, gzipped=True)
    assert not reads_more_than(path, len(CSV), gzipped=True)


def test_members_before_the_last_count_though_the_trailer_names_the_last_only(
    tmp_path: Path,
) -> None:
    # GIVEN two members: the trailer's ISIZE says 27 bytes, the file holds 10,857
    last = b"2025-06-01T00:00:01Z,u1,71\n"
    path = tmp_path / "v.csv.gz"
    path.write_bytes(gzip.compress(CSV) + gzip.compress(last))
    assert int.from_bytes(path.read_bytes()[-4:], "little") == len(last)
    # THEN the count reads past the first member
    assert reads_more_than(path, len(CSV), gzipped=True)
    assert not reads_more_than(path, len(CSV) + len(last), gzipped=True)


def test_a_damaged_gzip_is_routed_without_an_error(tmp_path: Path) -> None:
    """Either way is right: both engines then reject it as corrupt_gzip, the same one line
    (tests/e2e/test_gzip_errors.py; checked by hand at thresholds 0 and 1024)."""
    packed = gzip.compress(CSV)
    path = tmp_path / "v.csv.gz"
    path.write_bytes(packed[:-8] + bytes(8))  # no CRC32 and ISIZE: zero padding instead
    assert not reads_more_than(path, len(CSV), gzipped=True)

"""The chunked plan over data that arrives in pieces (the AWS Plan reads the upload as a
stream: `scan_blocks`, `gunzip_blocks`, `lf_blocks`): the same plan as `plan_file` over the
same bytes on disk, whatever the pieces."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthpipe.dataops.chunked.plan import (
    gunzip_blocks,
    lf_blocks,
    plan_file,
    plan_of,
    scan_blocks,
)
from healthpipe.errors import InputError

HEADER = b"event_time,user_id,heart_rate,note\n"


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    return (data[at : at + size] for at in range(0, len(data), size))


def sample() -> bytes:
    rows = [
        b'2025-11-01T00:%02d:00Z,u%d,%d,"line one\nline two, ""quoted"""\n' % (m % 60, m % 3, m)
        if m % 7 == 0
        else b"2025-11-01T00:%02d:00Z,u%d,%d,\n" % (m % 60, m % 3, m)
        for m in range(300)
    ]
    return HEADER + b"".join(rows)


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_the_plan_of_a_stream_is_the_plan_of_the_file(tmp_path: Path, size: int) -> None:
    # GIVEN a file with quoted line breaks, planned on disk
    data = sample()
    source = tmp_path / "in.csv"
    source.write_bytes(data)
    on_disk = plan_file(source, tmp_path, chunk_bytes=512, sha256="s").plan
    # WHEN the same bytes arrive in pieces of `size` bytes
    scanned = scan_blocks(pieces(data, size), 512)
    streamed = plan_of(
        scanned, sha256="s", size=len(data), gzipped=False, prepared=False, mixed=False
    )
    # THEN the plan is the same, cut for cut
    assert streamed == on_disk and len(streamed.chunks) > 3


def test_gzip_members_decompress_as_a_stream_in_bounded_pieces() -> None:
    # GIVEN two gzip members in a row (zero padding after the first), very compressible
    first, second = b"a" * 3_000_000, sample()
    packed = gzip.compress(first) + b"\x00\x00" + gzip.compress(second)
    # WHEN they arrive in pieces of 1000 bytes
    out = list(gunzip_blocks(pieces(packed, 1000)))
    # THEN the data is theirs, never more than 1 MiB at a time
    assert b"".join(out) == first + second
    assert max(len(piece) for piece in out) <= 1024 * 1024


@pytest.mark.parametrize("damage", ["cut short", "corrupt"])
def test_damaged_gzip_is_corrupt_gzip(damage: str) -> None:
    packed = gzip.compress(sample())
    bad = packed[: len(packed) // 2] if damage == "cut short" else packed[:20] + b"\xff" * 50
    with pytest.raises(InputError) as error:
        b"".join(gunzip_blocks(pieces(bad, 64)))
    assert error.value.code == "corrupt_gzip"


def test_crlf_becomes_lf_across_piece_boundaries() -> None:
    data = b"a,b\r\nc,d\r\n\r\ne,f\n\r"
    for size in range(1, 6):
        assert b"".join(lf_blocks(pieces(data, size))) == data.replace(b"\r\n", b"\n")


def test_the_folder_store_streams_as_s3_does(tmp_path: Path) -> None:
    import hashlib

    from healthpipe.adapters.local.object_store import FolderObjectStore

    store = FolderObjectStore(tmp_path / "bucket")
    data = sample()
    version = store.put_stream("work/d/data.csv", pieces(data, 1000), "text/csv")
    stream = store.stream("work/d/data.csv")
    assert b"".join(stream) == data
    assert (stream.sha256, stream.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert stream.version_id == version

"""ObjectStore contract: S3 (moto over HTTP) and the folder store behave the same."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import moto_env
import pytest
from boto3.s3.transfer import TransferConfig

from healthpipe.adapters.aws.s3 import S3ObjectStore
from healthpipe.adapters.local.object_store import FolderObjectStore
from healthpipe.errors import PermanentError
from healthpipe.ports import ObjectStore

MB = 1024 * 1024


@pytest.fixture(params=["local", "aws"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return FolderObjectStore(tmp_path / "bucket")
    aws: dict[str, Any] = request.getfixturevalue("aws")
    bucket = moto_env.unique("contract-store")
    moto_env.create_bucket(aws["s3"], bucket)
    # 5 MB parts (S3's minimum) so the multipart path runs on an 11 MB file
    small_parts = TransferConfig(multipart_threshold=5 * MB, multipart_chunksize=5 * MB)
    return S3ObjectStore(bucket, aws["s3"], transfer_config=small_parts)


def test_bytes_round_trip_and_listing(store: ObjectStore) -> None:
    # GIVEN objects under two prefixes
    store.put_bytes("manifests/b.json", b'{"b": 2}')
    store.put_bytes("manifests/a.json", b'{"a": 1}')
    store.put_bytes("processed/x.csv", b"x\n", "text/csv")
    # THEN they read back, list by prefix in key order, and exist
    assert store.get_bytes("manifests/a.json") == b'{"a": 1}'
    assert store.list_keys("manifests/") == ["manifests/a.json", "manifests/b.json"]
    assert store.exists("processed/x.csv")
    assert not store.exists("processed/missing.csv")


def test_missing_object_is_a_permanent_error(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(PermanentError):
        store.get_bytes("raw/nope.csv")
    with pytest.raises(PermanentError):
        store.materialize("raw/nope.csv", tmp_path / "work")


def test_materialize_hashes_while_streaming(store: ObjectStore, tmp_path: Path) -> None:
    data = b"event_time,user_id\n" + os.urandom(3 * MB)
    store.put_bytes("raw/sample.csv", data, "text/csv")
    local = store.materialize("raw/sample.csv", tmp_path / "work")
    assert local.sha256 == hashlib.sha256(data).hexdigest()
    assert local.size == len(data)
    assert local.path.read_bytes() == data
    assert local.key == "raw/sample.csv"
    assert local.version_id  # S3 VersionId (versioned bucket) / the folder's mtime-size


def test_large_file_upload_round_trips(store: ObjectStore, tmp_path: Path) -> None:
    # GIVEN an 11 MB file (three parts on S3)
    source = tmp_path / "big.parquet"
    source.write_bytes(os.urandom(11 * MB))
    # WHEN it is uploaded and downloaded again
    store.put_file("processed/big.parquet", source, "application/vnd.apache.parquet")
    local = store.materialize("processed/big.parquet", tmp_path / "work")
    # THEN the bytes are the same
    assert local.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()


def test_s3_multipart_and_kms_headers(aws: dict[str, Any], tmp_path: Path) -> None:
    # GIVEN a store configured with a KMS key and 5 MB parts
    bucket = moto_env.unique("contract-kms")
    moto_env.create_bucket(aws["s3"], bucket)
    key_id = aws["kms"].create_key(Description="healthpipe test")["KeyMetadata"]["KeyId"]
    store = S3ObjectStore(
        bucket,
        aws["s3"],
        kms_key_id=key_id,
        transfer_config=TransferConfig(multipart_threshold=5 * MB, multipart_chunksize=5 * MB),
    )
    big = tmp_path / "big.csv"
    big.write_bytes(os.urandom(11 * MB))
    # WHEN a large file and a small document are written
    version = store.put_file("processed/big.csv", big, "text/csv")
    store.put_bytes("manifests/m.json", b"{}")
    # THEN both are SSE-KMS encrypted with that key, the large one was sent in parts
    for key in ("processed/big.csv", "manifests/m.json"):
        head = aws["s3"].head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert key_id in head["SSEKMSKeyId"]
    head = aws["s3"].head_object(Bucket=bucket, Key="processed/big.csv", PartNumber=1)
    assert head["PartsCount"] == 3
    assert version == aws["s3"].head_object(Bucket=bucket, Key="processed/big.csv")["VersionId"]


# --- compose: the chunked engine's assembly (S3: multipart UploadPartCopy) ------------------
# Parts as the chunked engine writes them: large chunk parts, small rejected parts, empty
# ones; sizes around S3's 5 MiB minimum for all but the last part of a multipart upload.
# 1 KiB is topped up from the head of the 10 MiB part, whose rest is copied by range.
COMPOSE_SIZES = (5 * MB, 1024, 0, 10 * MB + 7, 2048)


def test_compose_concatenates_parts_in_order(store: ObjectStore) -> None:
    # GIVEN parts of mixed sizes (small neighbours, an empty one, large ones)
    parts = []
    for number, size in enumerate(COMPOSE_SIZES):
        key = f"work/ds/processed/part-{number:05d}.csv"
        store.put_bytes(key, os.urandom(size), "text/csv")
        parts.append(key)
    # WHEN they are composed into one object, the first 10 bytes of all but the first skipped
    skip = [0] + [10 if size else 0 for size in COMPOSE_SIZES[1:]]
    version = store.compose("processed/ds/out.csv", parts, skip=skip)
    # THEN it is their concatenation, in order, and the parts are still there
    expected = b"".join(store.get_bytes(key)[n:] for key, n in zip(parts, skip, strict=True))
    assert store.get_bytes("processed/ds/out.csv") == expected
    assert version
    assert all(store.exists(key) for key in parts)


def test_compose_of_small_parts_and_of_none(store: ObjectStore) -> None:
    store.put_bytes("work/a.csv", b"h1,h2\n1,2\n", "text/csv")
    store.put_bytes("work/b.csv", b"3,4\n", "text/csv")
    store.compose("processed/ab.csv", ["work/a.csv", "work/b.csv"])
    assert store.get_bytes("processed/ab.csv") == b"h1,h2\n1,2\n3,4\n"
    # each part after the first without its header line
    store.compose("processed/once.csv", ["work/a.csv", "work/a.csv"], skip=[0, 6])
    assert store.get_bytes("processed/once.csv") == b"h1,h2\n1,2\n1,2\n"
    store.compose("processed/empty.csv", [])
    assert store.get_bytes("processed/empty.csv") == b""


def test_compose_with_a_missing_part_is_a_permanent_error(store: ObjectStore) -> None:
    store.put_bytes("work/a.csv", b"x\n", "text/csv")
    with pytest.raises(PermanentError):
        store.compose("processed/out.csv", ["work/a.csv", "work/missing.csv"])
    assert not store.exists("processed/out.csv")


def test_s3_compose_copies_large_parts_server_side(aws: dict[str, Any]) -> None:
    # GIVEN two large parts and a small one in an SSE-KMS store
    bucket = moto_env.unique("contract-compose")
    moto_env.create_bucket(aws["s3"], bucket)
    key_id = aws["kms"].create_key(Description="healthpipe test")["KeyMetadata"]["KeyId"]
    store = S3ObjectStore(bucket, aws["s3"], kms_key_id=key_id)
    sizes = {"work/p0.csv": 6 * MB, "work/p1.csv": 5 * MB, "work/p2.csv": 100}
    for key, size in sizes.items():
        store.put_bytes(key, os.urandom(size), "text/csv")
    # WHEN they are composed
    store.compose("processed/out.csv", list(sizes))
    # THEN one multipart object of three parts (two copies, the small one last), encrypted
    head = aws["s3"].head_object(Bucket=bucket, Key="processed/out.csv", PartNumber=1)
    assert head["PartsCount"] == 3
    assert head["ContentLength"] == 6 * MB
    head = aws["s3"].head_object(Bucket=bucket, Key="processed/out.csv")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["ContentLength"] == sum(sizes.values())
    assert not aws["s3"].list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_s3_compose_aborts_on_a_missing_part(aws: dict[str, Any]) -> None:
    bucket = moto_env.unique("contract-compose")
    moto_env.create_bucket(aws["s3"], bucket)
    store = S3ObjectStore(bucket, aws["s3"])
    store.put_bytes("work/big.csv", os.urandom(6 * MB), "text/csv")
    # a part that vanishes between the size check and the copy
    original = store._size
    store._size = lambda part: 6 * MB if part == "work/gone.csv" else original(part)  # type: ignore[method-assign]
    with pytest.raises(PermanentError):
        store.compose("processed/out.csv", ["work/big.csv", "work/gone.csv"])
    assert not aws["s3"].list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_delete_old_versions_keeps_only_the_current_bytes(
    store: ObjectStore, aws_versions: Any
) -> None:
    # GIVEN an object written three times (a versioned bucket keeps every version)
    for n in range(3):
        store.put_bytes("processed/x.csv", f"v{n}\n".encode(), "text/csv")
    # WHEN the older versions are deleted (erasure)
    deleted = store.delete_old_versions("processed/x.csv")
    # THEN the current bytes stay; S3 deleted the two older versions, a folder has none
    assert store.get_bytes("processed/x.csv") == b"v2\n"
    assert deleted == (2 if isinstance(store, S3ObjectStore) else 0)
    assert aws_versions(store, "processed/x.csv") in (None, 1)


def test_delete_removes_the_object_and_every_version(store: ObjectStore, aws_versions: Any) -> None:
    store.put_bytes("reports/cards/a.json", b"1")
    store.put_bytes("reports/cards/a.json", b"2")
    store.put_bytes("reports/cards/b.json", b"3")
    store.delete("reports/cards/a.json")
    store.delete("reports/cards/missing.json")  # nothing to delete: no error
    assert store.list_keys("reports/cards/") == ["reports/cards/b.json"]
    assert not store.exists("reports/cards/a.json")
    assert aws_versions(store, "reports/cards/a.json") in (None, 0)


@pytest.fixture
def aws_versions() -> Any:
    """How many versions and delete markers of a key S3 holds (None for a folder store)."""

    def count(store: ObjectStore, key: str) -> int | None:
        if not isinstance(store, S3ObjectStore):
            return None
        listed = store.client.list_object_versions(Bucket=store.bucket, Prefix=key)
        entries = listed.get("Versions", []) + listed.get("DeleteMarkers", [])
        return sum(1 for entry in entries if entry["Key"] == key)

    return count


def test_download_ranges_writes_the_ranges_in_order(store: ObjectStore, tmp_path: Path) -> None:
    # GIVEN an object larger than one streamed piece
    data = os.urandom(MB + 100)
    store.put_bytes("work/data.csv", data, "text/csv")
    # WHEN a header range and a chunk range are fetched into one file
    ranges = [(0, 10), (MB - 5, MB + 50), (7, 7)]
    path = store.download_ranges("work/data.csv", tmp_path / "out" / "chunk.csv", ranges)
    # THEN the file holds those bytes, one range after the other (an empty one adds nothing)
    assert path.read_bytes() == data[0:10] + data[MB - 5 : MB + 50]
    with pytest.raises(PermanentError):
        store.download_ranges("work/missing.csv", tmp_path / "x.csv", [(0, 1)])


def test_a_stream_is_hashed_as_it_passes_and_written_as_it_comes(store: ObjectStore) -> None:
    # GIVEN 1.2 MB handed to put_stream in 100 kB pieces
    data = b"a,b\n" * 300_000
    pieces = (data[at : at + 100_000] for at in range(0, len(data), 100_000))
    version = store.put_stream("work/d/data.csv", pieces, "text/csv")
    # WHEN it is read back as a stream (more than one piece)
    stream = store.stream("work/d/data.csv", version or None)
    read = list(stream)
    # THEN the bytes, their hash, size and version are the object's
    assert b"".join(read) == data and len(read) > 1
    assert stream.sha256 == hashlib.sha256(data).hexdigest() and stream.size == len(data)
    assert stream.version_id == (version or stream.version_id)
    # AND a missing object is a permanent error
    with pytest.raises(PermanentError):
        b"".join(store.stream("work/d/missing.csv"))


# --- put_files: the lake's parts (analyze's _write_lake) -------------------------------------
def _parts(tmp_path: Path, count: int) -> list[tuple[str, Path]]:
    folder = tmp_path / "parts"
    folder.mkdir(exist_ok=True)
    parts = []
    for n in range(count):
        path = folder / f"part-{n}.parquet"
        path.write_bytes(f"part {n}\n".encode() * (n + 1))
        parts.append((f"lake/readings/pb={n:02d}/dt=2025-03-01/d1.parquet", path))
    return parts


def test_put_files_writes_every_file_and_returns_the_versions_in_order(
    store: ObjectStore, tmp_path: Path
) -> None:
    # GIVEN 12 small files (parts of the lake)
    parts = _parts(tmp_path, 12)
    expected = {key: path.read_bytes() for key, path in parts}
    # WHEN they are uploaded together (consumed: a folder store may move them in)
    versions = store.put_files(parts, "application/vnd.apache.parquet", consume=True)
    # THEN each object holds its file, and each upload's version comes back in order
    assert store.list_keys("lake/") == sorted(expected)
    for key, _ in parts:
        assert store.get_bytes(key) == expected[key]
    assert len(versions) == 12 and all(versions)
    assert store.put_files([]) == []


def test_put_files_raises_a_failure_and_leaves_no_object_half_written(
    store: ObjectStore, tmp_path: Path
) -> None:
    # GIVEN 6 files, the third of which has gone
    parts = _parts(tmp_path, 6)
    expected = {key: path.read_bytes() for key, path in parts}
    parts[2][1].unlink()
    # WHEN they are uploaded together THEN its failure is raised as put_file raises it
    with pytest.raises(FileNotFoundError):
        store.put_files(parts)
    # AND each other object is written whole or not at all, the missing one not at all
    assert not store.exists(parts[2][0])
    for key in store.list_keys("lake/"):
        assert store.get_bytes(key) == expected[key]


def test_s3_put_files_uploads_several_at_once(aws: dict[str, Any], tmp_path: Path) -> None:
    import itertools
    import threading

    bucket = moto_env.unique("contract-put-files")
    moto_env.create_bucket(aws["s3"], bucket)
    client = aws["s3"]
    meeting = threading.Barrier(2, timeout=20)
    tickets = itertools.count()

    class Meeting:
        """The client, whose first two PutObject calls wait for each other: one after the
        other, the first would wait alone and break the barrier."""

        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

        def put_object(self, **kwargs: Any) -> Any:
            if next(tickets) < 2:
                meeting.wait()
            return client.put_object(**kwargs)

    # GIVEN 24 parts WHEN they are uploaded together
    parts = _parts(tmp_path, 24)
    versions = S3ObjectStore(bucket, Meeting()).put_files(parts, "application/vnd.apache.parquet")
    # THEN two uploads ran at once, and the 24 objects are there, each with its version
    assert next(tickets) == 24
    listed = client.list_objects_v2(Bucket=bucket, Prefix="lake/")["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(key for key, _ in parts)
    assert len(set(versions)) == 24 and all(versions)

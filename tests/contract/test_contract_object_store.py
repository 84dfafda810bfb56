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

"""`healthpipe upload` and `healthpipe generate --upload` against S3 on the moto server."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import moto_env
from typer.testing import CliRunner

from healthpipe.cli import app

MB = 1024 * 1024


def test_upload_puts_files_under_raw_and_starts_the_pipeline(
    aws: dict[str, Any], stack: moto_env.Stack, tmp_path: Path
) -> None:
    # GIVEN a small CSV and a 17 MB one (above the 16 MB multipart threshold)
    small = tmp_path / "ward a.csv"
    small.write_text("event_time,user_id\n")
    big = tmp_path / "big.csv"
    big.write_bytes(b"event_time,user_id\n" + os.urandom(17 * MB))
    key_id = aws["kms"].create_key()["KeyMetadata"]["KeyId"]
    # WHEN both are uploaded with a KMS key
    result = CliRunner().invoke(
        app,
        ["upload", str(small), str(big), "--bucket", stack.bucket, "--kms-key-id", key_id],
    )
    # THEN both are under raw/, encrypted with the key; the big one went in parts
    assert result.exit_code == 0, result.output
    s3 = aws["s3"]
    for key, source in (("raw/ward a.csv", small), ("raw/big.csv", big)):
        head = s3.head_object(Bucket=stack.bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms" and key_id in head["SSEKMSKeyId"]
        body = s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(source.read_bytes()).digest()
    assert s3.head_object(Bucket=stack.bucket, Key="raw/big.csv", PartNumber=1)["PartsCount"] == 2
    assert "s3://" in result.output and "raw/big.csv" in result.output
    # AND S3 told EventBridge, whose ingest rule delivered both to the ingestor's queue
    delivered = moto_env.receive(aws["sqs"], stack.queues["ingestor"])
    # (a set: moto emits an extra "Object Created" for a multipart upload; S3 sends one)
    assert {e["detail"]["object"]["key"] for e in delivered} == {"raw/big.csv", "raw/ward a.csv"}


def test_upload_with_another_prefix_says_the_pipeline_ignores_it(
    aws: dict[str, Any], stack: moto_env.Stack, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.csv"
    notes.write_text("a\n")
    result = CliRunner().invoke(
        app, ["upload", str(notes), "--bucket", stack.bucket, "--prefix", "archive"]
    )
    assert result.exit_code == 0, result.output
    assert "pipeline ignores it" in result.output
    assert aws["s3"].head_object(Bucket=stack.bucket, Key="archive/notes.csv")


def test_upload_errors_are_one_line_and_an_exit_code(stack: moto_env.Stack, tmp_path: Path) -> None:
    missing = CliRunner().invoke(app, ["upload", str(tmp_path / "nope.csv"), "--bucket", "b"])
    assert missing.exit_code == 2
    data = tmp_path / "d.csv"
    data.write_text("a\n")
    no_bucket = CliRunner().invoke(app, ["upload", str(data), "--bucket", "no-such-bucket"])
    assert no_bucket.exit_code == 1
    assert "NoSuchBucket" in no_bucket.output
    assert "Traceback" not in no_bucket.output


def test_generate_upload_puts_synthetic_data_in_the_bucket(
    aws: dict[str, Any], stack: moto_env.Stack, tmp_path: Path
) -> None:
    out = tmp_path / "synthetic.csv"
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "--out",
            str(out),
            "--rows",
            "300",
            "--users",
            "5",
            "--upload",
            "--bucket",
            stack.bucket,
        ],
    )
    assert result.exit_code == 0, result.output
    body = aws["s3"].get_object(Bucket=stack.bucket, Key="raw/synthetic.csv")["Body"].read()
    assert body == out.read_bytes()
    assert body.startswith(b"event_time,user_id")

"""The ingestor's size guard (lambdas/capacity.py): a file the function cannot take is
refused before its download, with a reason pointing at the large-file path, and the
invocation ends without a Lambda retry; a file that fits is ingested."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, NamedTuple

import moto_env
import pytest
from lambda_harness import HANDLERS

from healthpipe.lambdas import capacity
from healthpipe.lambdas.capacity import LARGE_FILE_PATH, MB, Capacity

LAMBDA_TMP = 512 * MB  # Lambda's default ephemeral storage


class DiskUsage(NamedTuple):
    total: int
    used: int
    free: int


class Context:
    """The part of Lambda's context object the guard reads."""

    aws_request_id = "test-request"

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


# --- the rule (pure) -----------------------------------------------------------------------
def test_a_csv_that_fits_tmp_memory_and_time_is_admitted() -> None:
    # 100 MB at 1024 MB of memory: 250 MB of /tmp, about 48 s of 300
    limits = Capacity(tmp_free_bytes=LAMBDA_TMP, memory_mb=1024, remaining_seconds=300)
    assert limits.refusal("raw/day.csv", 100 * MB) is None
    assert limits.refusal("raw/unknown-size.csv", None) is None


@pytest.mark.parametrize(
    ("key", "size_mb", "limits", "says"),
    [
        # 300 MB needs 750 MB of /tmp: the default 512 MB cannot hold it
        ("raw/day.csv", 300, Capacity(LAMBDA_TMP, 3008, 900), "MB of /tmp"),
        # 100 MB of gzip expands to about 500 MB of CSV: 1.35 GB of /tmp
        ("raw/day.csv.gz", 100, Capacity(LAMBDA_TMP, 3008, 900), "MB of /tmp"),
        # 200 MB at 512 MB of memory (0.29 vCPU, 2.6 MB/s): about 191 s, 120 s left
        ("raw/day.csv", 200, Capacity(10_000 * MB, 512, 120), "before the timeout"),
    ],
    ids=["tmp", "gzip-expansion", "timeout-at-low-memory"],
)
def test_a_file_too_large_is_refused_with_the_large_file_path(
    key: str, size_mb: int, limits: Capacity, says: str
) -> None:
    reason = limits.refusal(key, size_mb * MB)
    assert reason is not None
    assert reason.startswith("file too large for this function")
    assert says in reason
    assert LARGE_FILE_PATH in reason
    anchor = LARGE_FILE_PATH.partition("#")[2]
    headings = (Path(__file__).resolve().parents[2] / LARGE_FILE_PATH.partition("#")[0]).read_text()
    assert f"## {anchor.replace('-', ' ')}".lower() in headings.lower()


def test_the_time_rule_scales_with_the_function_s_share_of_a_vcpu() -> None:
    # GIVEN 100 MB with 60 s left: at a full vCPU (9 MB/s) it takes about 28 s
    size = 100 * MB
    assert Capacity(LAMBDA_TMP, 1769, 60).refusal("raw/a.csv", size) is None
    # WHEN the function has a quarter of a vCPU, it would take about 111 s: refused
    assert Capacity(LAMBDA_TMP, 442, 60).refusal("raw/a.csv", size) is not None


# --- the handler: refused before download, a failure event, no retry ---------------------
# (`downloads`: tests/aws/conftest.py)
def shrink_tmp(monkeypatch: pytest.MonkeyPatch, free: int) -> None:
    """The function's /tmp has `free` bytes left (the guard asks shutil.disk_usage)."""
    real = shutil.disk_usage

    def usage(path: Any) -> DiskUsage:
        total = real(path).total
        return DiskUsage(total, total - free, free)

    monkeypatch.setattr("healthpipe.lambdas.capacity.shutil.disk_usage", usage)


def deliver_upload(
    aws: dict[str, Any], stack: moto_env.Stack, path: Path, key: str, context: Context
) -> dict[str, Any]:
    aws["s3"].upload_file(str(path), stack.bucket, key)
    [event] = moto_env.receive(aws["sqs"], stack.queues["ingestor"])
    assert event["detail"]["object"]["size"] == path.stat().st_size
    result: dict[str, Any] = HANDLERS["ingestor"].handler(moto_env.as_s3_sends_it(event), context)
    return result


def test_a_file_too_large_for_tmp_is_refused_before_download_without_retry(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    sample_file: Path,
    downloads: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a function whose /tmp has less free space than the file needs
    shrink_tmp(monkeypatch, free=sample_file.stat().st_size * 2)
    # WHEN its upload's event is delivered (900 s left: time is not the limit)
    result = deliver_upload(aws, stack, sample_file, "raw/too big.csv", Context(900_000))
    # THEN the invocation ends normally (no exception: Lambda does not retry it)
    [outcome] = result["results"]
    assert outcome["outcome"] == "refused"
    assert outcome["events"] == ["Data Processing Failed"]
    # AND nothing was downloaded, claimed or written
    assert downloads == []
    listed = aws["s3"].list_objects_v2(Bucket=stack.bucket)["Contents"]
    assert [o["Key"] for o in listed] == ["raw/too big.csv"]
    assert aws["dynamodb"].scan(TableName=stack.ledger_table)["Items"] == []
    # AND Data Processing Failed says why, points at the large-file path, and is final
    [failed] = moto_env.receive(aws["sqs"], stack.queues["alerts"])
    assert failed["detail-type"] == "Data Processing Failed"
    assert failed["source"] == "health.data.ingestor"
    detail = failed["detail"]
    assert detail["retryable"] is False
    assert detail["status"] == "refused"
    assert "MB of /tmp" in detail["error"]
    assert LARGE_FILE_PATH in detail["error"]
    assert detail["correlation_id"].startswith(f"{stack.bucket}/raw/too big.csv@")
    assert moto_env.receive(aws["sqs"], stack.queues["analyzer"]) == []


def test_a_file_too_slow_for_the_time_left_is_refused_before_download(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    sample_file: Path,
    downloads: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a 128 MB function (0.07 vCPU) with 10 ms left before its timeout
    monkeypatch.setenv(capacity.MEMORY_ENV, "128")
    # WHEN the upload's event is delivered
    result = deliver_upload(aws, stack, sample_file, "raw/slow.csv", Context(10))
    # THEN it is refused for time, before any download, with a final failure event
    assert [r["outcome"] for r in result["results"]] == ["refused"]
    assert downloads == []
    [failed] = moto_env.receive(aws["sqs"], stack.queues["alerts"])
    assert failed["detail"]["retryable"] is False
    assert "before the timeout" in failed["detail"]["error"]
    assert "128 MB of memory" in failed["detail"]["error"]


def test_a_file_that_fits_is_downloaded_and_ingested(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    sample_file: Path,
    downloads: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN Lambda's default 512 MB of /tmp and 300 s left
    shrink_tmp(monkeypatch, free=LAMBDA_TMP)
    # WHEN the upload's event is delivered
    result = deliver_upload(aws, stack, sample_file, "raw/fits.csv", Context(300_000))
    # THEN it was downloaded and processed, and no failure was sent
    assert [r["outcome"] for r in result["results"]] == ["done"]
    assert downloads == ["raw/fits.csv"]
    assert moto_env.receive(aws["sqs"], stack.queues["alerts"]) == []
    [manifest] = aws["s3"].list_objects_v2(Bucket=stack.bucket, Prefix="manifests/")["Contents"]
    body = aws["s3"].get_object(Bucket=stack.bucket, Key=manifest["Key"])["Body"].read()
    assert json.loads(body)["status"] == "processed"

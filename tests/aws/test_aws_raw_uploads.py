"""Every object created under raw/ leaves a record on AWS (moto server over HTTP).

The rules are the Terraform's, parsed and evaluated (tests/infra/test_infra_events.py
`upload_patterns`: the ingestor's rule takes every raw upload of the bucket, the chunked
rule the large uploads of the supported kinds in any case), put on moto's default bus with
SQS queues standing in for the ingestor and the state machine; real S3 uploads emit the
events. The ingestor's handler then runs on what its queue received: it ingests the
supported kinds, leaves the chunked rule's uploads to it, rejects any other kind with a
ledger record and Data Processing Failed (the object kept), and refuses a size EventBridge
cannot compare.
"""

from __future__ import annotations

import gzip
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import moto_env
import pytest
from infra_terraform import load_module
from lambda_harness import HANDLERS
from test_aws_iam_e2e import Run, deliver, enforce
from test_infra_events import CHUNKED, upload_patterns

from healthpipe import routing
from healthpipe.domain.identity import correlation_id_for
from healthpipe.synthetic import SyntheticSpec, generate_csv

THRESHOLD_MB = 1  # a small deployment's chunked_threshold_mb, so a test can cross it
GZIP_RATIO = 8  # the variable's default: .gz uploads from 128 KiB


class Context:
    aws_request_id = "test-request"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


@pytest.fixture
def routed(
    aws: dict[str, Any], stack: moto_env.Stack, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The Terraform's two upload rules on the default bus → queues; the ingestor's settings
    as Terraform gives them. Returns the queue of each route."""
    patterns = upload_patterns(load_module(), stack.bucket, THRESHOLD_MB, GZIP_RATIO)
    queues = {routing.INGEST: stack.queues["ingestor"]}
    queues[CHUNKED], chunked_arn = moto_env.create_queue(aws["sqs"], f"{stack.prefix}-chunked")
    ingestor_arn = aws["sqs"].get_queue_attributes(
        QueueUrl=queues[routing.INGEST], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    for name, route, arn in (
        ("raw-object-created", routing.INGEST, ingestor_arn),  # replaces the stack's rule
        ("raw-object-created-large", CHUNKED, chunked_arn),
    ):
        rule = f"{stack.prefix}-{name}"
        aws["events"].put_rule(
            Name=rule, EventBusName="default", EventPattern=json.dumps(patterns[route])
        )
        aws["events"].put_targets(
            Rule=rule, EventBusName="default", Targets=[{"Id": "target", "Arn": arn}]
        )
    monkeypatch.setenv("HEALTHPIPE_CHUNKED_THRESHOLD_MB", str(THRESHOLD_MB))
    monkeypatch.setenv("HEALTHPIPE_CHUNKED_GZIP_RATIO", str(GZIP_RATIO))
    return queues


def _keys(events: list[dict[str, Any]]) -> list[str]:
    return sorted(str(e["detail"]["object"]["key"]) for e in events)


def test_every_raw_upload_is_taken_by_one_route_and_leaves_a_record(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    routed: dict[str, str],
    downloads: list[str],
    tmp_path: Path,
) -> None:
    s3 = aws["s3"]
    small = generate_csv(SyntheticSpec(rows=200, users=3, seed=3), tmp_path / "small.csv")
    large = tmp_path / "large.csv"  # above the 1 MiB threshold
    large.write_bytes(small.read_bytes() + b"x" * (THRESHOLD_MB * 1048576))
    packed = tmp_path / "packed.gz"  # a gzip above 128 KiB (1 MiB / 8)
    with gzip.open(packed, "wb", compresslevel=0) as handle:
        handle.write(b"y" * 200_000)
    # GIVEN uploads of every kind under raw/, one outside it, and one to another bucket
    uploads = {
        "raw/export.Csv": small,  # a supported kind in another case: ingested
        "raw/vitals.csv.GZ": packed,  # a large gzip: the state machine's
        "raw/big.CSV": large,  # a large CSV: the state machine's
        "raw/notes.txt": small,  # another kind: rejected with a record
        "raw/huge.txt": large,  # another kind, large: rejected too, never chunked
        "processed/x.csv": small,  # outside raw/: nobody's
    }
    for key, path in uploads.items():
        s3.upload_file(str(path), stack.bucket, key)
    moto_env.create_bucket(s3, "someone-elses-bucket")
    s3.put_bucket_notification_configuration(
        Bucket="someone-elses-bucket", NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    s3.upload_file(str(small), "someone-elses-bucket", "raw/x.csv")
    # THEN the ingestor's rule delivered every raw upload of this bucket, whatever its name
    # or size, and the chunked rule the large ones of the supported kinds
    ingestor_events = moto_env.receive(aws["sqs"], routed[routing.INGEST])
    assert _keys(ingestor_events) == sorted(k for k in uploads if k.startswith("raw/"))
    chunked_events = moto_env.receive(aws["sqs"], routed[CHUNKED])
    assert _keys(chunked_events) == ["raw/big.CSV", "raw/vitals.csv.GZ"]
    # WHEN the ingestor runs on what it received
    outcomes: dict[str, list[str]] = {}
    for event in ingestor_events:
        result = HANDLERS["ingestor"].handler(moto_env.as_s3_sends_it(event), Context())
        key = str(event["detail"]["object"]["key"])
        outcomes[key] = [r["outcome"] for r in result["results"]]
    # THEN it ingested the .Csv, left the chunked rule's uploads to it, rejected the others
    assert outcomes == {
        "raw/export.Csv": ["done"],
        "raw/vitals.csv.GZ": [],
        "raw/big.CSV": [],
        "raw/notes.txt": ["rejected"],
        "raw/huge.txt": ["rejected"],
    }
    assert downloads == ["raw/export.Csv"]  # an unsupported kind is never downloaded
    # AND each rejected upload has a ledger record and a Data Processing Failed naming its
    # type, and stays where it was
    failures = {
        e["detail"]["source_key"]: e["detail"]
        for e in moto_env.receive(aws["sqs"], stack.queues["alerts"])
    }
    assert sorted(failures) == ["raw/huge.txt", "raw/notes.txt"]
    ledger = aws["dynamodb"].scan(TableName=stack.ledger_table)["Items"]
    for key, detail in failures.items():
        assert detail["error"] == "unsupported file type: .txt (expected .csv or .csv.gz)"
        assert (detail["status"], detail["error_code"]) == ("rejected", "unsupported_file_type")
        version = s3.head_object(Bucket=stack.bucket, Key=key)["VersionId"]
        assert detail["correlation_id"] == correlation_id_for(stack.bucket, key, version)
        [record] = [
            i for i in ledger if i["pk"]["S"] == f"ingest:object:{detail['correlation_id']}"
        ]
        assert record["status"]["S"] == "completed"
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=stack.bucket)["Contents"]}
    assert set(uploads) <= listed


def test_an_upload_beyond_eventbridges_numeric_range_is_refused_with_a_failure(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    routed: dict[str, str],
    downloads: list[str],
    tmp_path: Path,
) -> None:
    # GIVEN the event of a 6 GB upload (EventBridge compares sizes up to 5.0e9: the chunked
    # rule's ">=" does not match it, the ingestor's rule, which has no size, does)
    small = generate_csv(SyntheticSpec(rows=50, users=2, seed=4), tmp_path / "v.csv")
    aws["s3"].upload_file(str(small), stack.bucket, "raw/year.csv")
    [event] = moto_env.receive(aws["sqs"], routed[routing.INGEST])
    event["detail"]["object"]["size"] = 6_000_000_000
    # WHEN the ingestor receives it
    result = HANDLERS["ingestor"].handler(moto_env.as_s3_sends_it(event), Context())
    # THEN it refuses it before any download, and says why in Data Processing Failed
    assert [r["outcome"] for r in result["results"]] == ["refused"]
    assert downloads == []
    [failed] = moto_env.receive(aws["sqs"], stack.queues["alerts"])
    assert failed["detail-type"] == "Data Processing Failed"
    assert failed["detail"]["retryable"] is False
    assert failed["detail"]["error"].startswith("upload too large to route (6.0 GB)")
    assert "split it into files under 5 GB" in failed["detail"]["error"]


def test_the_ingestor_rejects_another_kind_with_only_its_own_permissions(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN IAM enforced, the ingestor running as its Terraform role, and a .txt under raw/
    aws["s3"].put_object(Bucket=stack.bucket, Key="raw/ward 3/notes.txt", Body=b"hello\n")
    [event] = moto_env.receive(aws["sqs"], stack.queues["ingestor"])
    with contextmanager(enforce)(aws, stack, moto_endpoint) as enforced:
        run = Run()
        # WHEN its upload is delivered
        deliver(enforced, "ingestor", event, monkeypatch, run)
        # THEN it is rejected without an error (no retry, nothing dead-lettered), its failure
        # published to the bus and its record written, with the function's permissions only
        assert run.dead_letters == []
        [(_, result)] = run.results
        assert [r["outcome"] for r in result["results"]] == ["rejected"]
        [failed] = moto_env.receive(enforced.admin["sqs"], stack.queues["alerts"])
        assert failed["detail"]["error_code"] == "unsupported_file_type"
        assert failed["detail"]["source_key"] == "raw/ward 3/notes.txt"
        items = enforced.admin["dynamodb"].scan(TableName=stack.ledger_table)["Items"]
        assert [i["pk"]["S"].split("@")[0] for i in items] == [
            f"ingest:object:{stack.bucket}/raw/ward 3/notes.txt"
        ]

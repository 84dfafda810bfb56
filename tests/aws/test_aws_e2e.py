"""The whole pipeline on the AWS runtime, on a moto server: S3 → EventBridge → handlers.

EventBridge rules (patterns from healthpipe.routing.ROUTES) deliver to SQS queues standing
in for the Lambda functions; the test drains each queue into the real handler module, as
the Lambda service would (a raised error sends the event to the function's DLQ).
"""

from __future__ import annotations

import email
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import moto_env
import pytest
from lambda_harness import HANDLERS

from healthpipe import constants as c
from healthpipe.domain.identity import LAKE_READINGS_PREFIX


@dataclass
class Drained:
    invocations: dict[str, int] = field(default_factory=lambda: {f: 0 for f in HANDLERS})
    dead_letters: list[tuple[str, dict[str, Any], Exception]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)


def drain(aws: dict[str, Any], stack: moto_env.Stack, *, deliveries: int = 1) -> Drained:
    """Feed every queued event to its function `deliveries` times until all queues are empty."""
    drained = Drained()
    for _ in range(20):
        moved = 0
        for function, module in HANDLERS.items():
            for event in moto_env.receive(aws["sqs"], stack.queues[function]):
                moved += 1
                for _ in range(deliveries):
                    drained.invocations[function] += 1
                    try:
                        module.handler(event, None)
                    except Exception as exc:  # Lambda would retry, then dead-letter it
                        drained.dead_letters.append((function, event, exc))
                        dead_letter(aws, stack, function, event, exc)
                        break
        drained.alerts += moto_env.receive(aws["sqs"], stack.queues["alerts"])
        if not moved:
            return drained
    raise AssertionError("queues did not drain in 20 rounds")


def dead_letter(
    aws: dict[str, Any], stack: moto_env.Stack, function: str, event: Any, exc: Exception
) -> None:
    """What Lambda's on-failure destination puts in `<prefix>-<function>-dlq`."""
    record = {
        "version": "1.0",
        "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": event,
        "responsePayload": {"errorType": type(exc).__name__, "errorMessage": str(exc)},
    }
    aws["sqs"].send_message(QueueUrl=stack.dlqs[function], MessageBody=json.dumps(record))


def upload(aws: dict[str, Any], stack: moto_env.Stack, source: Path, key: str) -> None:
    aws["s3"].upload_file(str(source), stack.bucket, key)


def keys(aws: dict[str, Any], bucket: str, prefix: str) -> list[str]:
    listed = aws["s3"].list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return [item["Key"] for item in listed]


def lake_rows(aws: dict[str, Any], bucket: str, lake: list[str], tmp_path: Path) -> int:
    """The rows of the lake files `lake`, downloaded and counted by DuckDB."""
    import duckdb

    total = 0
    for index, key in enumerate(lake):
        path = tmp_path / f"lake-{index}.parquet"
        path.write_bytes(aws["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())
        [(count,)] = duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()
        total += int(count)
    return total


def table_items(aws: dict[str, Any], table: str) -> list[dict[str, Any]]:
    pages = aws["dynamodb"].get_paginator("scan").paginate(TableName=table)
    return [item for page in pages for item in page["Items"]]


def sent_messages() -> list[email.message.Message]:
    return [email.message_from_string(m.raw_data) for m in moto_env.sent_emails()]


def assert_text_and_html(message: email.message.Message) -> None:
    assert moto_env.RECIPIENT in message["To"]
    types = [part.get_content_type() for part in message.walk()]
    assert "text/plain" in types and "text/html" in types


def assert_one_report_email() -> None:
    sent = sent_messages()
    assert len(sent) == 1
    assert_text_and_html(sent[0])


def test_sample_file_runs_end_to_end(
    aws: dict[str, Any], stack: moto_env.Stack, sample_file: Path, tmp_path: Path
) -> None:
    # GIVEN the sample file lands under raw/ (S3 sends "Object Created" to the default bus)
    upload(aws, stack, sample_file, "raw/sample_data.csv")
    # WHEN every routed event is delivered to its function
    drained = drain(aws, stack)
    # THEN each stage ran once, nothing was dead-lettered or alerted
    assert drained.dead_letters == []
    assert drained.alerts == []
    assert drained.invocations == {"ingestor": 1, "analyzer": 1, "notifier": 1}
    # AND the bucket holds every output
    manifest_keys = keys(aws, stack.bucket, c.MANIFESTS_PREFIX)
    assert len(manifest_keys) == 1
    manifest = json.loads(
        aws["s3"].get_object(Bucket=stack.bucket, Key=manifest_keys[0])["Body"].read()
    )
    dataset_id = manifest["dataset_id"]
    assert manifest["status"] == "processed"
    assert manifest["source"]["version_id"]  # the S3 VersionId was captured
    assert manifest["correlation_id"].startswith(f"{stack.bucket}/raw/sample_data.csv@")
    processed = keys(aws, stack.bucket, c.PROCESSED_PREFIX)
    assert any(k.endswith(".parquet") for k in processed)
    assert any(k.endswith(".csv") for k in processed)
    assert manifest["counts"]["rejected"] > 0  # the sample has bad rows
    assert keys(aws, stack.bucket, c.REJECTED_PREFIX) == [manifest["outputs"]["rejected_csv"]]
    assert f"{c.ANALYZED_PREFIX}{dataset_id}.json" in keys(aws, stack.bucket, c.ANALYZED_PREFIX)
    assert f"{c.REPORTS_PREFIX}{dataset_id}.html" in keys(aws, stack.bucket, c.REPORTS_PREFIX)
    # AND the analyzer wrote the lake: every valid row once, by participant bucket and day
    lake = keys(aws, stack.bucket, LAKE_READINGS_PREFIX)
    pattern = rf"{LAKE_READINGS_PREFIX}pb=\d{{2}}/dt=\d{{4}}-\d{{2}}-\d{{2}}/{dataset_id}\.parquet"
    assert lake and all(re.fullmatch(pattern, key) for key in lake)
    assert lake_rows(aws, stack.bucket, lake, tmp_path) == manifest["counts"]["valid"]
    # AND the ledger holds three completed claims; the analyses table the summary + flagged
    ledger = {i["pk"]["S"]: i["status"]["S"] for i in table_items(aws, stack.ledger_table)}
    assert ledger == {
        f"ingest:{manifest['source']['sha256']}": "completed",
        f"analyze:{dataset_id}": "completed",
        f"notify:{dataset_id}": "completed",
    }
    analyses = table_items(aws, stack.analyses_table)
    summary = next(i for i in analyses if i["sk"]["S"] == "SUMMARY")
    assert summary["pk"]["S"] == f"DATASET#{dataset_id}"
    assert json.loads(summary["doc"]["S"])["rows"]["input"] == manifest["counts"]["input"]
    flagged = [
        i for i in analyses if i["pk"]["S"].startswith("DATASET#") and i["sk"]["S"] != "SUMMARY"
    ]
    assert flagged and all(i["sk"]["S"].startswith(("USER#P-", "EPISODE#")) for i in flagged)
    # AND each participant-day's histogram of the readings (issue 18), keyed by pseudonym
    history = [i for i in analyses if not i["pk"]["S"].startswith("DATASET#")]
    assert history and all(i["pk"]["S"].startswith("HISTORY#P-") for i in history)
    assert all(i["sk"]["S"].endswith(f"#{dataset_id}") for i in history)
    # AND exactly one email with text and HTML went out through SES
    assert_one_report_email()


@pytest.mark.parametrize("alert_min_severity", ["never", "high"])
def test_every_event_delivered_twice_sends_one_email(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    sample_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    alert_min_severity: str,
) -> None:
    # GIVEN alerts off, or on (severe findings then get a separate [ALERT] email, own claim)
    monkeypatch.setenv("HEALTHPIPE_ALERT_MIN_SEVERITY", alert_min_severity)
    # AND the file is uploaded twice (two versions, same bytes)
    upload(aws, stack, sample_file, "raw/sample_data.csv")
    upload(aws, stack, sample_file, "raw/sample_data.csv")
    # WHEN every event, and every replayed event, is delivered twice
    drained = drain(aws, stack, deliveries=2)
    # THEN nothing failed and exactly one report email was sent (plus one alert when on)
    assert drained.dead_letters == []
    assert drained.invocations["ingestor"] == 4
    assert drained.invocations["notifier"] >= 4  # the replayed completions reached it too
    subjects = sorted(str(m["Subject"]) for m in sent_messages())
    reports = [s for s in subjects if not s.startswith("[ALERT]")]
    alerts = [s for s in subjects if s.startswith("[ALERT]")]
    assert len(reports) == 1, subjects
    assert len(alerts) == (1 if alert_min_severity == "high" else 0), subjects
    for message in sent_messages():
        assert_text_and_html(message)
    assert len(keys(aws, stack.bucket, c.MANIFESTS_PREFIX)) == 1


def test_poisoned_event_fails_without_retry_while_others_proceed(
    aws: dict[str, Any], stack: moto_env.Stack, sample_file: Path
) -> None:
    # GIVEN a good upload and a "Data Processing Complete" whose processed file does not exist
    upload(aws, stack, sample_file, "raw/sample_data.csv")
    poison = {
        "schema_version": c.SCHEMA_VERSION,
        "correlation_id": f"{stack.bucket}/raw/ghost.csv@v1",
        "dataset_id": "deadbeefdeadbeef",
        "status": "success",
        "manifest_key": "manifests/deadbeefdeadbeef.json",
        "processed_key": "processed/dt=2026-01-01/ghost-deadbeefdeadbeef.parquet",
    }
    aws["s3"].put_object(
        Bucket=stack.bucket,
        Key=poison["manifest_key"],
        Body=json.dumps(
            {
                "counts": {"input": 1, "valid": 1, "rejected": 0, "by_reason": {}},
                "outputs": {},
                "source": {"key": "raw/ghost.csv"},
            }
        ).encode(),
    )
    poison_entry = {
        "EventBusName": stack.bus,
        "Source": c.SOURCE_INGESTOR,
        "DetailType": c.PROCESSING_COMPLETE,
        "Detail": json.dumps(poison),
    }
    aws["events"].put_events(Entries=[poison_entry])
    # WHEN all events are delivered
    drained = drain(aws, stack)
    # THEN the poisoned one failed permanently in the analyzer: no retry, no dead letter, a
    # Data Analysis Failed event with the reason, and its claim released
    assert drained.dead_letters == []
    [failed] = [a for a in drained.alerts if a["detail"]["dataset_id"] == "deadbeefdeadbeef"]
    assert failed["detail-type"] == c.ANALYSIS_FAILED
    assert "no such object" in failed["detail"]["error"]
    ledger = {i["pk"]["S"] for i in table_items(aws, stack.ledger_table)}
    assert "analyze:deadbeefdeadbeef" not in ledger
    # AND the good file went all the way to its email
    assert_one_report_email()
    assert moto_env.receive(aws["sqs"], stack.dlqs["analyzer"]) == []
    # WHEN the cause is fixed (the processed file and its manifest put in place) and the
    # event is sent again, as docs/operations.md says
    s3 = aws["s3"]
    # the good file's manifest: the other one (its key sorts before or after the poison's
    # by the sample's content hash, which moves with the generated file's dates)
    [good_key] = [k for k in keys(aws, stack.bucket, "manifests/") if k != poison["manifest_key"]]
    good = json.loads(s3.get_object(Bucket=stack.bucket, Key=good_key)["Body"].read())
    s3.copy_object(
        Bucket=stack.bucket,
        Key=poison["processed_key"],
        CopySource={"Bucket": stack.bucket, "Key": good["outputs"]["processed_parquet"]},
    )
    fixed = {**good, "dataset_id": poison["dataset_id"], "correlation_id": poison["correlation_id"]}
    s3.put_object(Bucket=stack.bucket, Key=poison["manifest_key"], Body=json.dumps(fixed).encode())
    aws["events"].put_events(Entries=[poison_entry])
    replayed = drain(aws, stack)
    # THEN it runs through to its own report email
    assert replayed.dead_letters == []
    assert len(sent_messages()) == 2
    ledger_status = {i["pk"]["S"]: i["status"]["S"] for i in table_items(aws, stack.ledger_table)}
    assert ledger_status["notify:deadbeefdeadbeef"] == "completed"


def test_scheduled_digest_reaches_the_notifier_once(
    aws: dict[str, Any], stack: moto_env.Stack, sample_file: Path
) -> None:
    # GIVEN one analysed file
    upload(aws, stack, sample_file, "raw/sample_data.csv")
    drain(aws, stack)
    # WHEN the daily schedule's event arrives (twice: EventBridge delivers at least once)
    digest = {
        "EventBusName": stack.bus,
        "Source": c.SOURCE_SCHEDULER,
        "DetailType": c.DIGEST_REQUESTED,
        "Detail": json.dumps({"window_seconds": 86400}),
    }
    aws["events"].put_events(Entries=[digest])
    drained = drain(aws, stack, deliveries=2)
    # THEN the notifier sent one digest email besides the report
    assert drained.dead_letters == []
    assert drained.invocations["notifier"] == 2
    sent = sent_messages()
    assert len(sent) == 2
    assert_text_and_html(sent[1])
    ledger = {i["pk"]["S"] for i in table_items(aws, stack.ledger_table)}
    assert any(key.startswith("digest:") for key in ledger)

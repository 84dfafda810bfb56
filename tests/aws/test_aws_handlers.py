"""Lambda handlers: event shapes (captured payloads in tests/events), routing, retries."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import moto_env
import pytest
from lambda_harness import HANDLERS

from healthpipe import routing
from healthpipe.adapters.aws.ledger import DynamoLedger
from healthpipe.errors import TransientError
from healthpipe.events import object_of
from healthpipe.lambdas import FUNCTIONS, analyzer, ingestor, notifier
from healthpipe.lambdas.runtime import UnroutableEventError
from healthpipe.stages.base import ClaimHeldError

EVENTS = Path(__file__).resolve().parents[1] / "events"


def payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


def test_s3_notification_records_keep_raw_uploads_and_decode_keys(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging.getLogger("healthpipe"), "propagate", True)
    caplog.set_level(logging.INFO, logger="healthpipe")
    # GIVEN a notification with four records: two raw CSVs, one processed/, one raw .txt
    work = ingestor.parse(payload("s3_notification_records.json"))
    # THEN the three raw uploads are the ingest stage's (which rejects the .txt with a
    # failure record), keys URL-decoded, versions kept
    assert [w.target for w in work] == [routing.INGEST] * 3
    objects = [object_of(w.event) for w in work]
    assert objects == [
        (
            "healthpipe-data-123456789012",
            "raw/ward A/vitals (2026-11-25).csv",
            "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd",
        ),
        ("healthpipe-data-123456789012", "raw/night shift.csv.gz", "Vx2"),
        ("healthpipe-data-123456789012", "raw/notes.txt", None),
    ]
    # AND the object outside raw/ is ignored with a log line
    ignored = [r for r in caplog.records if r.getMessage().startswith("ignored object")]
    assert [r.fields["key"] for r in ignored] == [  # type: ignore[attr-defined]
        "processed/dt=2026-11-25/x.csv",
    ]


def test_eventbridge_object_created_is_ingested_as_is() -> None:
    raw = payload("eventbridge_object_created.json")
    [work] = ingestor.parse(raw)
    assert work.target == routing.INGEST
    assert work.event.id == raw["id"]
    assert object_of(work.event) == (
        "healthpipe-data-123456789012",
        "raw/sample_data.csv",
        "2fb8d3f7-582f-4a8d-894d-5dfc4fc04142",
    )


def test_each_function_accepts_only_its_routes() -> None:
    assert [w.target for w in analyzer.parse(payload("data_processing_complete.json"))] == [
        routing.ANALYZE
    ]
    assert [w.target for w in notifier.parse(payload("data_analysis_complete.json"))] == [
        routing.NOTIFY
    ]
    assert [w.target for w in notifier.parse(payload("digest_requested.json"))] == [routing.DIGEST]
    with pytest.raises(UnroutableEventError):
        analyzer.parse(payload("data_analysis_complete.json"))
    with pytest.raises(UnroutableEventError):
        notifier.parse(payload("data_processing_complete.json"))
    failed = {**payload("data_processing_complete.json")}
    failed["detail"] = {**failed["detail"], "status": "rejected"}
    with pytest.raises(UnroutableEventError):  # only successful processing is analysed
        analyzer.parse(failed)
    with pytest.raises(UnroutableEventError):
        ingestor.parse(payload("data_processing_complete.json"))


def test_function_specs_name_the_real_handlers() -> None:
    import importlib

    for name, spec in FUNCTIONS.items():
        module, _, attribute = spec.handler.rpartition(".")
        assert spec.name == name
        assert callable(getattr(importlib.import_module(module), attribute))
        for adapter in spec.adapters:
            actions = importlib.import_module(adapter).IAM_ACTIONS
            assert all(":" in action for action in actions)
        from healthpipe.config import Settings

        assert set(spec.settings) <= set(Settings.model_fields)


def test_claim_held_elsewhere_raises_a_retryable_error(
    aws: dict[str, Any], stack: moto_env.Stack
) -> None:
    # GIVEN another analyzer instance holds the claim on this dataset (its lease is live)
    other = DynamoLedger(stack.ledger_table, aws["dynamodb"], owner="other-container")
    raw = payload("data_processing_complete.json")
    key = f"analyze:{raw['detail']['dataset_id']}"
    other.claim(key)
    # WHEN the event is delivered here
    # THEN the handler raises the stage's transient error so Lambda retries it later: the
    # one ClaimHeldError, naming the claim and its holder
    with pytest.raises(ClaimHeldError) as raised:
        analyzer.handler(raw, None)
    assert isinstance(raised.value, TransientError)
    assert raised.value.key == key
    assert raised.value.record.owner == "other-container"


def test_several_records_one_missing_ends_without_retry_after_the_others_ran(
    aws: dict[str, Any], stack: moto_env.Stack, sample_file: Path
) -> None:
    # GIVEN a notification naming an existing raw file and one that does not exist
    aws["s3"].upload_file(str(sample_file), stack.bucket, "raw/good file.csv")
    moto_env.receive(aws["sqs"], stack.queues["ingestor"])  # the EventBridge copy: not used
    records = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": stack.bucket}, "object": {"key": "raw/missing.csv"}},
            },
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": stack.bucket}, "object": {"key": "raw/good+file.csv"}},
            },
        ]
    }
    # WHEN it is delivered: the missing file is a permanent error, no retry can help
    result = HANDLERS["ingestor"].handler(records, None)
    # THEN the invocation ends normally (no Lambda retry) with Data Processing Failed
    assert [r["outcome"] for r in result["results"]] == ["failed", "done"]
    [failed] = moto_env.receive(aws["sqs"], stack.queues["alerts"])
    assert failed["detail-type"] == "Data Processing Failed"
    assert "no such object" in failed["detail"]["error"]
    assert failed["detail"]["retryable"] is False
    # AND the good file was still ingested and its event published
    manifests = aws["s3"].list_objects_v2(Bucket=stack.bucket, Prefix="manifests/")
    assert manifests["KeyCount"] == 1
    [event] = moto_env.receive(aws["sqs"], stack.queues["analyzer"])
    assert event["detail"]["correlation_id"].startswith(f"{stack.bucket}/raw/good file.csv@")


def test_a_transient_error_is_still_raised_for_a_retry(
    aws: dict[str, Any], stack: moto_env.Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN S3 answers with a throttling error
    from healthpipe.adapters.aws.s3 import S3ObjectStore

    def throttled(self: Any, key: str, workdir: Path, version_id: str | None) -> Any:
        raise TransientError("SlowDown: reduce your request rate")

    monkeypatch.setattr(S3ObjectStore, "_download", throttled)
    event = payload("eventbridge_object_created.json")
    event["detail"]["bucket"]["name"] = stack.bucket
    # WHEN the upload's event is delivered THEN the handler raises (Lambda retries it)
    with pytest.raises(TransientError):
        HANDLERS["ingestor"].handler(event, None)
    assert moto_env.receive(aws["sqs"], stack.queues["alerts"]) == []


@pytest.mark.parametrize(
    "key",
    ["raw/ward a+b 100%.csv", "raw/ward 3+4 2026-01-05T10:00 Zürich é.csv", "raw/plain.csv"],
)
def test_eventbridge_keys_arrive_url_encoded_and_name_the_object(
    aws: dict[str, Any], stack: moto_env.Stack, sample_file: Path, key: str
) -> None:
    # GIVEN a raw file whose name needs encoding (space, +, %, :, non-ASCII)
    aws["s3"].upload_file(str(sample_file), stack.bucket, key)
    # WHEN S3's EventBridge event reaches the ingestor with the key URL-encoded as S3 sends
    # it (spaces as +; moto sends it plain, so the test encodes it)
    [event] = moto_env.receive(aws["sqs"], stack.queues["ingestor"])
    sent = moto_env.as_s3_sends_it(event)
    if key != "raw/plain.csv":
        assert sent["detail"]["object"]["key"] != key
    HANDLERS["ingestor"].handler(sent, None)
    # THEN that very object (and version) was ingested
    [manifest_key] = [
        o["Key"]
        for o in aws["s3"].list_objects_v2(Bucket=stack.bucket, Prefix="manifests/")["Contents"]
    ]
    manifest = json.loads(
        aws["s3"].get_object(Bucket=stack.bucket, Key=manifest_key)["Body"].read()
    )
    assert manifest["status"] == "processed"
    assert manifest["source"]["key"] == key
    assert manifest["source"]["version_id"] == event["detail"]["object"]["version-id"]


def test_the_documented_eventbridge_shape_decodes_like_powertools() -> None:
    # GIVEN the S3 "Object Created" event as AWS documents it, with an encoded key
    from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
    from aws_lambda_powertools.utilities.data_classes.s3_event import (
        S3EventBridgeNotificationObject,
    )

    raw = payload("eventbridge_object_created.json")
    raw["detail"]["object"]["key"] = "raw/ward+3%2B4+10%3A00+Z%C3%BCrich.csv"
    # WHEN the ingestor parses it
    [work] = ingestor.parse(raw)
    # THEN the key is the one Powertools decodes
    expected = S3EventBridgeNotificationObject(EventBridgeEvent(raw).detail["object"]).key
    assert object_of(work.event)[1] == expected == "raw/ward 3+4 10:00 Zürich.csv"

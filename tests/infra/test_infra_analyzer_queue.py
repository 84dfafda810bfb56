"""The analyzer is fed through an SQS queue: the analyze rule targets the queue, Lambda's event
source polls it with a bounded concurrency (the Bedrock guard, without reserving account
concurrency), and the analyzer's handler accepts the SQS records EventBridge's messages
arrive in."""

from __future__ import annotations

import json
from typing import Any

import pytest
from infra_terraform import Module, attr, load_module, squash

from healthpipe import constants as c
from healthpipe import routing
from healthpipe.domain.documents.events import EventDetail
from healthpipe.events import Event
from healthpipe.lambdas import analyzer
from healthpipe.lambdas.runtime import UnroutableEventError


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


def processing_complete() -> Event:
    detail = EventDetail(
        correlation_id="b/k@v", dataset_id="0123456789abcdef", status="success"
    ).as_json()
    return Event(source=c.SOURCE_INGESTOR, detail_type=c.PROCESSING_COMPLETE, detail=detail)


def sqs_record(
    body: str, message_id: str = "059f36b4-87a3-44ab-83d2-661975830a7d"
) -> dict[str, Any]:
    """A record as Lambda's SQS event source delivers it (the documented shape)."""
    return {
        "messageId": message_id,
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1545082649183",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1545082649185",
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:healthpipe-analyze-queue",
        "awsRegion": "us-east-1",
    }


def test_the_analyze_rule_delivers_to_the_queue_and_the_event_source_polls_it(
    module: Module,
) -> None:
    assert module.local("queued_targets") == ["analyzer"]
    target = module.resource("aws_cloudwatch_event_target", "this")
    assert "aws_sqs_queue.analyze.arn" in attr(target, "arn")
    # no direct invoke permission for the analyzer: only the queue's event source invokes it
    assert "!contains(local.queued_targets,r.target)" in squash(module.local("function_routes"))
    mapping = module.resource("aws_lambda_event_source_mapping", "analyze")
    assert attr(mapping, "function_name") == '${aws_lambda_function.this["analyzer"].arn}'
    assert attr(mapping, "event_source_arn") == "${aws_sqs_queue.analyze.arn}"
    assert attr(mapping, "batch_size") == 1
    scaling = attr(mapping, "scaling_config")
    assert attr(scaling, "maximum_concurrency") == "${var.analyzer_max_concurrency}"
    assert attr(module.variables["analyzer_max_concurrency"], "default") == 2


def test_the_queue_is_encrypted_dead_letters_and_outlasts_the_analyzer(module: Module) -> None:
    queue = module.resource("aws_sqs_queue", "analyze")
    assert attr(queue, "kms_master_key_id") == "${aws_kms_key.this.arn}"
    assert 'aws_sqs_queue.dlq["analyzer"].arn' in attr(queue, "redrive_policy")
    assert "var.lambda_timeout_seconds.analyzer*6" in squash(
        attr(queue, "visibility_timeout_seconds")
    )
    document = module.data["aws_iam_policy_document"]["analyze_queue"]
    [send] = [s for s in document["statement"] if attr(s, "sid") == "AnalyzeRuleDelivers"]
    condition = attr(send, "condition")
    assert attr(condition, "values") == ['${aws_cloudwatch_event_rule.this["analyze"].arn}']


def test_the_analyzer_accepts_an_eventbridge_event_wrapped_in_an_sqs_record() -> None:
    # GIVEN the event the analyze rule matched, as EventBridge writes it into the queue
    event = processing_complete()
    raw = {"Records": [sqs_record(json.dumps({**event.to_dict(), "account": "123456789012"}))]}
    # WHEN the analyzer parses what the event source delivers
    work = analyzer.parse(raw)
    # THEN it is the analyze work of that event
    assert [w.target for w in work] == [routing.ANALYZE]
    assert work[0].event.dataset_id == "0123456789abcdef"
    assert work[0].event.correlation_id == "b/k@v"


def test_the_analyzer_still_accepts_a_direct_eventbridge_event() -> None:
    assert [w.target for w in analyzer.parse(processing_complete().to_dict())] == [routing.ANALYZE]


def test_a_batch_of_records_gives_one_work_item_each() -> None:
    body = json.dumps(processing_complete().to_dict())
    raw = {"Records": [sqs_record(body, "a"), sqs_record(body, "b")]}
    assert len(analyzer.parse(raw)) == 2


@pytest.mark.parametrize(
    "raw",
    [
        {"Records": [sqs_record("not json")]},
        {"Records": [sqs_record("[1, 2]")]},
        {"Records": [{**sqs_record("{}"), "eventSource": "aws:s3"}]},
    ],
)
def test_records_that_are_not_pipeline_events_in_sqs_messages_are_refused(
    raw: dict[str, Any],
) -> None:
    with pytest.raises((UnroutableEventError, ValueError)):
        analyzer.parse(raw)


def test_an_sqs_wrapped_event_of_another_route_is_refused() -> None:
    detail = EventDetail(
        correlation_id="b/k@v", dataset_id="0123456789abcdef", status="success"
    ).as_json()
    other = Event(source=c.SOURCE_ANALYZER, detail_type=c.ANALYSIS_COMPLETE, detail=detail)
    with pytest.raises(UnroutableEventError):
        analyzer.parse({"Records": [sqs_record(json.dumps(other.to_dict()))]})

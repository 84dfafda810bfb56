"""A moto server over real HTTP with the AWS resources the Terraform creates (same names).

Shared by tests/aws and tests/contract (which puts this folder on sys.path).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from healthpipe import routing
from healthpipe.adapters.aws.clients import BOTO_CONFIG

REGION = "us-east-1"
ACCOUNT = "123456789012"
SENDER = "healthpipe@example.com"
RECIPIENT = "care-team@example.com"
SERVICES = ("s3", "dynamodb", "events", "ses", "sqs", "kms")
FUNCTION_OF_TARGET = {
    routing.INGEST: "ingestor",
    routing.ANALYZE: "analyzer",
    routing.NOTIFY: "notifier",
    routing.DIGEST: "notifier",
    routing.ALERT: "alerts",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AtomicDynamoDB:
    """WSGI wrapper: one DynamoDB request at a time, as DynamoDB's conditional writes are atomic.

    moto's backend checks a `ConditionExpression` and then writes, and its threaded server can
    switch threads in between: two racing `attribute_not_exists` puts could both succeed, which
    real DynamoDB never allows (seen as a flaky "lost the claim" with ten racing containers).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB"):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))


class AtomicMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer whose DynamoDB requests are serialised (see `AtomicDynamoDB`)."""

    def _server_entry(self) -> None:
        app = AtomicDynamoDB(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


def moto_server() -> Iterator[str]:
    """Start a moto server on 127.0.0.1 (never 0.0.0.0); yields its endpoint URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = AtomicMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def session() -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


def clients(endpoint: str) -> dict[str, Any]:
    s = session()
    return {name: s.client(name, endpoint_url=endpoint, config=BOTO_CONFIG) for name in SERVICES}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_bucket(s3: Any, name: str) -> None:
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def create_ledger_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )


def create_analyses_table(dynamodb: Any, name: str) -> None:
    def gsi(index: str, hash_key: str) -> dict[str, Any]:
        return {
            "IndexName": index,
            "KeySchema": [
                {"AttributeName": hash_key, "KeyType": "HASH"},
                {"AttributeName": "created_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }

    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": attr, "AttributeType": "S"}
            for attr in ("pk", "sk", "user_key", "day", "created_at")
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[gsi("by_user", "user_key"), gsi("by_day", "day")],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )


def create_queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return str(url), str(arn)


@dataclass
class Stack:
    """The deployed names (as in the Terraform) and the SQS queues standing in for targets."""

    prefix: str
    bucket: str
    ledger_table: str
    analyses_table: str
    bus: str
    queues: dict[str, str] = field(default_factory=dict)  # function -> queue URL
    dlqs: dict[str, str] = field(default_factory=dict)  # function -> its DLQ URL

    def env(self) -> dict[str, str]:
        return {
            "HEALTHPIPE_RUNTIME": "aws",
            "HEALTHPIPE_BUCKET": self.bucket,
            "HEALTHPIPE_LEDGER_TABLE": self.ledger_table,
            "HEALTHPIPE_ANALYSES_TABLE": self.analyses_table,
            "HEALTHPIPE_EVENT_BUS_NAME": self.bus,
            "HEALTHPIPE_MAILER": "ses",
            "HEALTHPIPE_EMAIL_FROM": SENDER,
            "HEALTHPIPE_EMAIL_TO": RECIPIENT,
            "HEALTHPIPE_ALERT_MIN_SEVERITY": "never",  # one email per file unless a test asks
        }


def create_stack(c: dict[str, Any], prefix: str = "healthpipe") -> Stack:
    """Bucket (versioned, S3→EventBridge on), tables, buses, rules from ROUTES → SQS, SES."""
    stack = Stack(
        prefix=prefix,
        bucket=f"{prefix}-data-{ACCOUNT}",
        ledger_table=f"{prefix}-ledger",
        analyses_table=f"{prefix}-analyses",
        bus=f"{prefix}-bus",
    )
    create_bucket(c["s3"], stack.bucket)
    c["s3"].put_bucket_notification_configuration(
        Bucket=stack.bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    create_ledger_table(c["dynamodb"], stack.ledger_table)
    create_analyses_table(c["dynamodb"], stack.analyses_table)
    c["events"].create_event_bus(Name=stack.bus)
    arns: dict[str, str] = {}
    for function in sorted(set(FUNCTION_OF_TARGET.values())):
        stack.queues[function], arns[function] = create_queue(c["sqs"], f"{prefix}-{function}")
    for function in ("ingestor", "analyzer", "notifier"):
        stack.dlqs[function], _ = create_queue(c["sqs"], f"{prefix}-{function}-dlq")
    for route in routing.ROUTES:
        bus = "default" if route.target == routing.INGEST else stack.bus
        rule = f"{prefix}-{route.name}"
        c["events"].put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(route.pattern))
        c["events"].put_targets(
            Rule=rule,
            EventBusName=bus,
            Targets=[{"Id": "target", "Arn": arns[FUNCTION_OF_TARGET[route.target]]}],
        )
    c["ses"].verify_email_identity(EmailAddress=SENDER)
    return stack


def receive(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message now in the queue (deleted as read): the events a target would get."""
    events: list[dict[str, Any]] = []
    while True:
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        messages = response.get("Messages", [])
        if not messages:
            return events
        for message in messages:
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def sent_emails(region: str = REGION) -> list[Any]:
    """SES messages moto accepted (the server runs in this process, so its backend is here)."""
    from moto.ses.models import ses_backends

    return list(ses_backends[ACCOUNT][region].sent_messages)


def as_s3_sends_it(event: dict[str, Any]) -> dict[str, Any]:
    """moto's S3 → EventBridge event with its key URL-encoded (spaces as +), as S3 sends it
    (and as Powertools' S3EventBridgeNotificationObject.key decodes it); moto sends it plain."""
    detail = event.get("detail") or {}
    obj = detail.get("object")
    if event.get("source") != "aws.s3" or not isinstance(obj, dict) or "key" not in obj:
        return event
    from urllib.parse import quote_plus

    encoded = {**obj, "key": quote_plus(str(obj["key"]), safe="/")}
    return {**event, "detail": {**detail, "object": encoded}}

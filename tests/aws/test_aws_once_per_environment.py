"""Clients and settings are built once per execution environment: on the first invocation,
from one boto3 session, and reused by every warm invocation (importing builds nothing:
test_aws_import_side_effects.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import botocore.client
import moto_env
import pytest
from lambda_harness import HANDLERS

from healthpipe import config


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Every boto3 session, botocore client and settings load made from now on."""
    seen: dict[str, list[Any]] = {"sessions": [], "clients": [], "settings": []}
    real_session = boto3.session.Session.__init__
    real_client = botocore.client.ClientCreator.create_client
    real_settings = config.load_settings

    def session(self: Any, *args: Any, **kwargs: Any) -> None:
        seen["sessions"].append(self)
        real_session(self, *args, **kwargs)

    def client(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        seen["clients"].append(service_name)
        return real_client(self, service_name, *args, **kwargs)

    def settings(*args: Any, **kwargs: Any) -> Any:
        seen["settings"].append(args)
        return real_settings(*args, **kwargs)

    monkeypatch.setattr(boto3.session.Session, "__init__", session)
    monkeypatch.setattr(botocore.client.ClientCreator, "create_client", client)
    monkeypatch.setattr(config, "load_settings", settings)
    return seen


def test_warm_invocations_reuse_the_clients_and_settings_of_the_first(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    sample_file: Path,
    built: dict[str, list[Any]],
) -> None:
    # GIVEN a new execution environment (nothing built yet) and two uploads
    ingestor = HANDLERS["ingestor"]
    for name in ("first", "second"):
        body = sample_file.read_bytes() + (b"\n" if name == "second" else b"")
        aws["s3"].put_object(Bucket=stack.bucket, Key=f"raw/{name}.csv", Body=body)
    events = moto_env.receive(aws["sqs"], stack.queues["ingestor"])
    assert len(events) == 2
    # WHEN the first invocation runs
    first = ingestor.handler(moto_env.as_s3_sends_it(events[0]), None)
    # THEN it read the settings once and made its clients from one session
    assert len(built["settings"]) == 1
    assert len(built["sessions"]) == 1
    assert {"s3", "dynamodb", "events"} <= set(built["clients"])
    assert len(built["clients"]) == len(set(built["clients"]))  # one client per service
    made = {key: list(value) for key, value in built.items()}
    ports = ingestor._function.ports()
    # WHEN a warm invocation runs in the same environment
    second = ingestor.handler(moto_env.as_s3_sends_it(events[1]), None)
    # THEN it built nothing: the same ports, no new session, client or settings
    assert built == made
    assert ingestor._function.ports() is ports
    assert [r["outcome"] for r in first["results"] + second["results"]] == ["done", "done"]


def test_a_new_environment_builds_them_again(
    aws: dict[str, Any], stack: moto_env.Stack, built: dict[str, list[Any]]
) -> None:
    # GIVEN an environment that built its ports
    analyzer = HANDLERS["analyzer"]._function
    ports = analyzer.ports()
    assert len(built["sessions"]) == 1
    # WHEN Lambda starts another one (the module is imported afresh: reset stands for it)
    analyzer.reset()
    # THEN its first invocation builds its own
    assert analyzer.ports() is not ports
    assert len(built["sessions"]) == 2

"""A function's ports build the EventBridge client only when it publishes: `event_bus` among
its declared adapters (`lambdas.FUNCTIONS`, which its IAM role is made from). The notifier, the
Map states and the Release states publish nothing and have no `events:PutEvents`."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import boto3
import pytest

import healthpipe.adapters.aws.session as aws_session
from healthpipe.adapters.aws.event_bus import EventBridgeBus, NoEventBus
from healthpipe.errors import PermanentError
from healthpipe.events import Event
from healthpipe.lambdas import AWS, FUNCTIONS
from healthpipe.lambdas.runtime import LambdaFunction


class RecordingSession:
    """A real boto3 session (no call is made) that records the clients made from it."""

    def __init__(self) -> None:
        self.session = boto3.session.Session(
            region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        self.clients: list[str] = []

    def client(self, service: str, *args: Any, **kwargs: Any) -> Any:
        self.clients.append(service)
        return self.session.client(service, *args, **kwargs)


def _function(name: str) -> LambdaFunction:
    module = importlib.import_module(FUNCTIONS[name].handler.rsplit(".", 1)[0])
    function: LambdaFunction = module._function
    return function


def _first_ports(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, list[str]]:
    """The ports `name`'s first invocation builds, and the clients made for them."""
    for key, value in {
        "HEALTHPIPE_BUCKET": "bucket",
        "HEALTHPIPE_LEDGER_TABLE": "ledger",
        "HEALTHPIPE_ANALYSES_TABLE": "analyses",
        "MPLCONFIGDIR": str(tmp_path / "matplotlib"),
    }.items():
        monkeypatch.setenv(key, value)
    session = RecordingSession()
    monkeypatch.setattr(aws_session, "new_session", lambda: session)
    function = _function(name)
    monkeypatch.setattr(function, "workdir", tmp_path)
    monkeypatch.setattr(function, "_ports", None)  # a new container, restored after
    return function.ports(), session.clients


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_only_a_function_that_publishes_builds_an_eventbridge_client(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a function's declared adapters WHEN its first invocation builds its ports
    ports, clients = _first_ports(name, tmp_path, monkeypatch)
    publishes = f"{AWS}event_bus" in FUNCTIONS[name].adapters
    # THEN it has an EventBridge client and bus if and only if it publishes
    assert ("events" in clients) == publishes, clients
    assert isinstance(ports.bus, EventBridgeBus if publishes else NoEventBus)


def test_the_notifier_has_no_bus_and_an_event_to_publish_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports, clients = _first_ports("notifier", tmp_path, monkeypatch)
    assert "events" not in clients
    ports.bus.publish_many([])  # the runtime publishes each result's events: none
    event = Event("health.data.analyzer", "Data Analysis Complete", {"dataset_id": "d1"})
    with pytest.raises(PermanentError, match="notifier publishes no events"):
        ports.bus.publish(event)

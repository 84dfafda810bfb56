"""X-Ray: Terraform turns tracing on per deployment (`tracing_enabled`: Lambda's
tracing_config Active and POWERTOOLS_TRACE_DISABLED=false), and the functions then trace each
stage through the Powertools Tracer; with tracing off nothing is traced or imported."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import aws_lambda_powertools
import pytest

from healthpipe.lambdas.runtime import traced


class FakeSubsegment:
    def __init__(self) -> None:
        self.annotations: dict[str, str] = {}

    def put_annotation(self, key: str, value: str) -> None:
        self.annotations[key] = value


class FakeProvider:
    opened: ClassVar[list[tuple[str, FakeSubsegment]]] = []

    @contextlib.contextmanager
    def in_subsegment(self, name: str) -> Iterator[FakeSubsegment]:
        subsegment = FakeSubsegment()
        self.opened.append((name, subsegment))
        yield subsegment


class FakeTracer:
    def __init__(self, **_: Any) -> None:
        self.provider = FakeProvider()


@pytest.fixture
def tracer(monkeypatch: pytest.MonkeyPatch) -> type[FakeProvider]:
    FakeProvider.opened = []
    monkeypatch.setattr(aws_lambda_powertools, "Tracer", FakeTracer)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "healthpipe-analyzer")
    return FakeProvider


def test_a_stage_runs_in_a_subsegment_annotated_with_its_dataset_when_tracing_is_on(
    tracer: type[FakeProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    with traced("## analyze", "0123456789abcdef"):
        pass
    [(name, subsegment)] = tracer.opened
    assert name == "## analyze"
    assert subsegment.annotations == {"dataset_id": "0123456789abcdef"}


@pytest.mark.parametrize("disabled", ["true", "True"])
def test_nothing_is_traced_when_terraform_turns_tracing_off(
    tracer: type[FakeProvider], monkeypatch: pytest.MonkeyPatch, disabled: str
) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", disabled)
    with traced("## analyze", "0123456789abcdef"):
        pass
    assert tracer.opened == []


def test_nothing_is_traced_outside_lambda(
    tracer: type[FakeProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    with traced("## ingest", None):
        pass
    assert tracer.opened == []


def test_a_stage_error_leaves_the_subsegment_and_propagates(tracer: type[FakeProvider]) -> None:
    with pytest.raises(RuntimeError), traced("## notify", None):
        raise RuntimeError("boom")
    assert [name for name, _ in tracer.opened] == ["## notify"]

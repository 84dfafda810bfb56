"""Metrics contract: what is added and flushed is what the backend records.

AWS: CloudWatch EMF documents on stdout (namespace healthpipe, dimension stage only).
Local: rows in SQLite, summed by `totals()`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable

import pytest

from healthpipe.adapters.aws.metrics import EmfMetrics
from healthpipe.adapters.local.metrics import SqliteMetrics
from healthpipe.adapters.local.sqlite import Database
from healthpipe.ports import Metrics

Totals = Callable[[], dict[str, float]]


def emf_documents(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


@pytest.fixture(params=["local", "aws"])
def metrics_and_totals(
    request: pytest.FixtureRequest, db: Database, capsys: pytest.CaptureFixture[str]
) -> tuple[Metrics, Totals]:
    if request.param == "local":
        local = SqliteMetrics(db)
        return local, local.totals

    def from_stdout() -> dict[str, float]:
        sums: dict[str, float] = defaultdict(float)
        for doc in emf_documents(capsys.readouterr().out):
            names = [m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]]  # type: ignore[index]
            for name in names:
                value = doc[name]
                sums[name] += sum(value) if isinstance(value, list) else float(value)  # type: ignore[arg-type]
        return dict(sums)

    return EmfMetrics(), from_stdout


def test_flushed_points_are_recorded(metrics_and_totals: tuple[Metrics, Totals]) -> None:
    metrics, totals = metrics_and_totals
    metrics.add("RowsInput", 1000, stage="ingest")
    metrics.add("RowsInput", 500, stage="ingest")
    metrics.add("RejectRatio", 0.25, stage="ingest", unit="None")
    metrics.add("EmailsSent", 1, stage="notify")
    metrics.add("StageDurationMs", 42, stage="notify", unit="Milliseconds")
    metrics.flush()
    metrics.flush()  # nothing pending: writes nothing
    assert totals() == {
        "RowsInput": 1500.0,
        "RejectRatio": 0.25,
        "EmailsSent": 1.0,
        "StageDurationMs": 42.0,
    }


def test_nothing_is_recorded_before_flush(metrics_and_totals: tuple[Metrics, Totals]) -> None:
    metrics, totals = metrics_and_totals
    metrics.add("FilesIngested", 1, stage="ingest")
    assert totals() == {}


def test_emf_has_namespace_and_only_the_stage_dimension(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "healthpipe-ingestor")
    metrics = EmfMetrics()
    metrics.add("FilesIngested", 1, stage="ingest")
    metrics.add("EmailsSent", 1, stage="notify")
    metrics.add("StageDurationMs", 12, stage="notify", unit="Milliseconds")
    metrics.flush()
    docs = emf_documents(capsys.readouterr().out)
    assert [d["stage"] for d in docs] == ["ingest", "notify"]
    for doc in docs:
        directive = doc["_aws"]["CloudWatchMetrics"][0]  # type: ignore[index]
        assert directive["Namespace"] == "healthpipe"
        assert directive["Dimensions"] == [["stage"]]
        assert "service" not in doc
    units = {m["Name"]: m["Unit"] for m in docs[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}  # type: ignore[index]
    assert units == {"EmailsSent": "Count", "StageDurationMs": "Milliseconds"}

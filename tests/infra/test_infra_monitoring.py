"""Code <-> infra, observability: the alarms and the dashboard watch metrics the stages really
emit (name and `stage` dimension), every metric of the design is on the dashboard, and the
alarms the issue asks for exist and notify the alert topic."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from infra_terraform import TERRAFORM, Module, attr, load_module

import healthpipe.stages as stages_package
from healthpipe import constants as c

DESIGN_METRICS = [
    "FilesIngested",
    "RowsInput",
    "RowsValid",
    "RowsRejected",
    "RejectRatio",
    "AnomaliesDetected",
    "EpisodesDetected",
    "LLMInputTokens",
    "LLMOutputTokens",
    "LLMCostUSD",
    "AnalystFallbacks",
    "EmailsSent",
    "StageDurationMs",
    "StageFailures",
]


def emitted_metrics() -> set[tuple[str, str]]:
    """(metric, stage) pairs the stage modules record (`.add("Name", ..., stage=STAGE)`)."""
    out: set[tuple[str, str]] = set()
    for path in Path(stages_package.__file__).parent.glob("*.py"):
        text = path.read_text()
        stage = re.search(r'^STAGE = "(\w+)"', text, re.MULTILINE)
        if not stage:
            continue
        for name in re.findall(r'\.add\(\s*"(\w+)"', text):
            out.add((name, stage.group(1)))
        if "run_claimed(" in text:  # stages.base.run_claimed records StageFailures for it
            out.add(("StageFailures", stage.group(1)))
    return out


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


def dashboard_metrics() -> set[tuple[str, str]]:
    text = (TERRAFORM / "monitoring.tf").read_text()
    return set(re.findall(r'\[local\.metrics_ns, "(\w+)", "stage", "(\w+)"', text))


def test_the_dashboard_shows_only_emitted_metrics_and_every_design_metric() -> None:
    emitted = emitted_metrics()
    shown = dashboard_metrics()
    assert shown, "no pipeline metric on the dashboard"
    assert shown <= emitted, shown - emitted
    assert {name for name, _ in shown} >= set(DESIGN_METRICS)


def test_pipeline_alarms_watch_emitted_metrics(module: Module) -> None:
    assert module.local("metrics_ns") == c.METRICS_NAMESPACE
    emitted = emitted_metrics()
    alarms = module.local("pipeline_alarms")
    for name, alarm in alarms.items():
        assert (alarm["metric"], alarm["stage"]) in emitted, name
    watched = {alarm["metric"] for alarm in alarms.values()}
    assert {"RejectRatio", "AnalystFallbacks"} <= watched


def test_the_asked_for_alarms_exist_and_notify_the_alert_topic(module: Module) -> None:
    alarms = module.resources["aws_cloudwatch_metric_alarm"]
    assert {"errors", "throttles", "duration", "dlq", "pipeline"} <= set(alarms)
    assert attr(alarms["errors"], "metric_name") == "Errors"
    assert attr(alarms["throttles"], "metric_name") == "Throttles"
    assert "0.8" in attr(alarms["duration"], "threshold")
    assert attr(alarms["dlq"], "metric_name") == "ApproximateNumberOfMessagesVisible"
    assert attr(alarms["dlq"], "for_each") == "${aws_sqs_queue.dlq}"
    for alarm in alarms.values():
        assert attr(alarm, "alarm_actions") == "${local.alarm_actions}"
    assert module.local("alarm_actions") == ["${aws_sns_topic.alerts.arn}"]

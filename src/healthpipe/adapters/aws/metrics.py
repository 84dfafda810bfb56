"""Metrics as CloudWatch Embedded Metric Format lines, written through Powertools.

One EMF document per stage and flush: namespace `healthpipe`, one dimension `stage` (the
`service` dimension Powertools adds from POWERTOOLS_SERVICE_NAME is turned off, so alarms
and dashboards address every metric by `stage` alone). CloudWatch Logs turns the lines on
stdout into metrics; no API call is made, so no IAM action is needed.
"""

from __future__ import annotations

from collections import defaultdict

from aws_lambda_powertools.metrics import EphemeralMetrics

from healthpipe.constants import METRICS_NAMESPACE
from healthpipe.ports import MetricPoint, Metrics

IAM_ACTIONS: tuple[str, ...] = ()

UNITS = {"Count": "Count", "Milliseconds": "Milliseconds", "None": "None", "Bytes": "Bytes"}


class EmfMetrics(Metrics):
    def __init__(self, namespace: str = METRICS_NAMESPACE) -> None:
        super().__init__()
        self.namespace = namespace

    def _write(self, points: list[MetricPoint]) -> None:
        by_stage: dict[str, list[MetricPoint]] = defaultdict(list)
        for point in points:
            by_stage[point.stage].append(point)
        for stage, group in by_stage.items():
            emf = EphemeralMetrics(namespace=self.namespace, service="")
            emf.add_dimension(name="stage", value=stage)
            for point in group:
                emf.add_metric(
                    name=point.name, unit=UNITS.get(point.unit, "None"), value=point.value
                )
            emf.flush_metrics()

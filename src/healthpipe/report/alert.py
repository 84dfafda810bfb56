"""The short alert email sent at once when an analysis has findings at/above a threshold."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from healthpipe.report import labels as lb
from healthpipe.report.model import (
    DEFAULT_DISCLAIMER,
    SEVERITIES,
    SEVERITY_RANK,
    People,
    count,
    findings_at_or_above,
    number,
    short_time,
)
from healthpipe.report.render import mime_message, render_template
from healthpipe.report.safe import neutralise

ALERT_PREFIX = "[ALERT]"
ALERT_ROWS = 10


@dataclass
class AlertModel:
    dataset_id: str
    subject: str
    source_name: str
    generated_at: str
    threshold: str
    flagged: str
    by_severity: list[dict[str, str]]
    episodes: list[dict[str, str]]
    findings: list[dict[str, str]]
    report_key: str
    disclaimer: str
    severity_colours: dict[str, str]

    def as_context(self) -> dict[str, Any]:
        return dict(self.__dict__)


def alert_count(analysis: dict[str, Any], threshold: str) -> int:
    """Findings at or above `threshold` ('never' → 0)."""
    return findings_at_or_above(analysis["anomalies"].get("by_severity", {}), threshold)


def _at_or_above(severity: Any, threshold: str) -> bool:
    return SEVERITY_RANK.get(str(severity), 0) >= SEVERITY_RANK.get(threshold, 99)


def build_alert_model(
    analysis: dict[str, Any], *, secret: str, threshold: str, report_key: str
) -> AlertModel:
    people = People(analysis, secret, reveal=False)
    flagged = alert_count(analysis, threshold)
    source_name = neutralise(str(analysis["source"]["key"]).rsplit("/", 1)[-1], 80)
    dataset_id = neutralise(analysis["dataset_id"], 40)
    day = str(analysis.get("created_at", ""))[:10]
    worst = neutralise(analysis.get("worst_severity") or "none", 10)
    episodes = [
        {
            "ref": people.ref(e["user_id"]),
            "who": people.who(e["user_id"]),
            "what": lb.kind_label(str(e["kind"])),
            "severity": str(e["severity"]),
            "start": short_time(e.get("start_time")),
            "duration": lb.duration_text(float(e.get("duration_s") or 0)),
            "peak": f"{number(e['peak_value'])} {lb.metric_unit(str(e['metric']))}".strip(),
        }
        for e in analysis["episodes"]["list"]
        if _at_or_above(e["severity"], threshold)
    ][:ALERT_ROWS]
    findings = [
        {
            "ref": people.ref(a["user_id"]),
            "who": people.who(a["user_id"]),
            "what": lb.kind_label(str(a["kind"])),
            "severity": str(a["severity"]),
            "time": short_time(a.get("event_time")),
            "value": f"{number(a['value'])} {lb.metric_unit(str(a['metric']))}".strip(),
        }
        for a in analysis["anomalies"].get("top", [])
        if _at_or_above(a["severity"], threshold)
    ][:ALERT_ROWS]
    return AlertModel(
        dataset_id=dataset_id,
        subject=(
            f"{ALERT_PREFIX} healthpipe {day} | {source_name} | dataset {dataset_id}"
            f" | {flagged} finding(s) at {threshold} severity or above | worst: {worst}"
        ),
        source_name=source_name,
        generated_at=short_time(analysis.get("created_at")),
        threshold=threshold,
        flagged=count(flagged),
        by_severity=[
            {"severity": s, "count": count(analysis["anomalies"]["by_severity"].get(s, 0))}
            for s in SEVERITIES
        ],
        episodes=episodes,
        findings=findings,
        report_key=neutralise(report_key, 200),
        disclaimer=neutralise(analysis.get("disclaimer") or DEFAULT_DISCLAIMER, 1000),
        severity_colours=dict(lb.SEVERITY_COLOURS),
    )


def build_alert_message(model: AlertModel, *, sender: str, recipients: list[str]) -> EmailMessage:
    context = model.as_context()
    message = mime_message(
        subject=model.subject,
        sender=sender,
        recipients=recipients,
        text=render_template("alert.txt", context),
        html=render_template("alert.html", context),
        images=[],
        idstring=f"alert.{model.dataset_id}",
        headers={"X-Healthpipe-Dataset": model.dataset_id, "X-Priority": "1"},
    )
    return message

"""The short alert email sent at once when an analysis has findings at/above a threshold."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from healthpipe.domain.brief import finding_sentence, high_participants, plural
from healthpipe.domain.documents import Analysis
from healthpipe.report import labels as lb
from healthpipe.report.model import (
    DEFAULT_DISCLAIMER,
    SEVERITIES,
    SEVERITY_RANK,
    People,
    count,
    findings_at_or_above,
    short_time,
    worst_value_text,
)
from healthpipe.report.render import mime_message, render_template
from healthpipe.report.safe import neutralise

ALERT_PREFIX = "[ALERT]"
ALERT_ROWS = 10
ALERT_READINGS = 3  # readings named per participant


@dataclass
class AlertModel:
    dataset_id: str
    subject: str
    source_name: str
    generated_at: str
    threshold: str
    flagged: str
    flagged_text: str
    more_participants: int
    by_severity: list[dict[str, str]]
    episodes: list[dict[str, str]]
    findings: list[dict[str, str | list[str]]]
    report_key: str
    disclaimer: str
    severity_colours: dict[str, str]

    def as_context(self) -> dict[str, Any]:
        return dict(self.__dict__)


def alert_count(analysis: Analysis, threshold: str) -> int:
    """Findings at or above `threshold` ('never' → 0)."""
    return findings_at_or_above(analysis.anomalies.by_severity, threshold)


def _at_or_above(severity: Any, threshold: str) -> bool:
    return SEVERITY_RANK.get(str(severity), 0) >= SEVERITY_RANK.get(threshold, 99)


@dataclass
class _Group:
    user_id: str
    severity: str
    n: int
    readings: list[str]


def participant_findings(
    analysis: Analysis, people: People, threshold: str
) -> list[dict[str, str | list[str]]]:
    """Findings at or above `threshold`, one entry per participant, worst first (then by the
    number of such findings): every participant with a high-severity finding (named with
    the worst reading of each vital, blood pressure as a pair), then the others among the
    analysis's top findings."""
    groups: dict[str, _Group] = {}
    if _at_or_above("high", threshold):
        for person in high_participants(analysis.facts()):
            groups[person.user_id] = _Group(
                person.user_id,
                "high",
                person.high,
                [finding_sentence(f) for f in person.findings],
            )
    for row in analysis.anomalies.top:
        uid = row.user_id
        if not _at_or_above(row.severity, threshold) or (
            uid in groups and groups[uid].severity == "high"
        ):
            continue
        group = groups.setdefault(uid, _Group(uid, row.severity, 0, []))
        if SEVERITY_RANK.get(row.severity, 0) > SEVERITY_RANK.get(group.severity, 0):
            group.severity = row.severity
        group.n += 1
        if len(group.readings) < ALERT_READINGS:
            group.readings.append(finding_sentence(row))  # blood pressure as its pair
    ordered = sorted(groups.values(), key=lambda g: (-SEVERITY_RANK.get(g.severity, 0), -g.n))
    return [
        {
            "ref": people.ref(g.user_id),
            "who": people.who(g.user_id),
            "severity": g.severity,
            "count": plural(g.n, "finding") + f" at {threshold} severity or above",
            "readings": [neutralise(text, 300) for text in g.readings],
        }
        for g in ordered
    ]


def build_alert_model(
    analysis: Analysis, *, secret: str, threshold: str, report_key: str
) -> AlertModel:
    people = People(analysis, secret, reveal=False)
    flagged = alert_count(analysis, threshold)
    source_name = neutralise(analysis.source.key.rsplit("/", 1)[-1], 80)
    dataset_id = neutralise(analysis.dataset_id, 40)
    day = analysis.created_at[:10]
    worst = neutralise(analysis.worst_severity or "none", 10)
    episodes = [
        {
            "ref": people.ref(e.user_id),
            "who": people.who(e.user_id),
            "what": lb.kind_label(e.kind),
            "severity": e.severity,
            "start": short_time(e.start_time),
            "duration": lb.duration_text(float(e.duration_s or 0)),
            "peak": worst_value_text(e),
        }
        for e in analysis.episodes.items
        if _at_or_above(e.severity, threshold)
    ][:ALERT_ROWS]
    grouped = participant_findings(analysis, people, threshold)
    findings = grouped[:ALERT_ROWS]
    return AlertModel(
        dataset_id=dataset_id,
        subject=(
            f"{ALERT_PREFIX} healthpipe {day} | {source_name} | dataset {dataset_id}"
            f" | {plural(flagged, 'finding')} at {threshold} severity or above | worst: {worst}"
        ),
        source_name=source_name,
        generated_at=short_time(analysis.created_at),
        threshold=threshold,
        flagged=count(flagged),
        flagged_text=plural(flagged, "finding"),
        more_participants=len(grouped) - len(findings),
        by_severity=[
            {"severity": s, "count": count(analysis.anomalies.by_severity.get(s, 0))}
            for s in SEVERITIES
        ],
        episodes=episodes,
        findings=findings,
        report_key=neutralise(report_key, 200),
        disclaimer=neutralise(analysis.disclaimer or DEFAULT_DISCLAIMER, 1000),
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

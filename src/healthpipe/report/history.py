"""The participant history page (`healthpipe history PARTICIPANT`): a view model of a
`ParticipantTimeline`, its one chart and its HTML (Jinja2, autoescaped, one file a browser
opens: the chart is a data URI). The participant is named by pseudonym only.

Its chart is `charts.vitals_history_chart`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from healthpipe.domain import clinical
from healthpipe.domain.baseline import MIN_READINGS
from healthpipe.domain.documents.participant_timeline import (
    FindingKind,
    HistoryEpisode,
    ParticipantTimeline,
    TimelineBaseline,
)
from healthpipe.domain.trends import TREND_RULES
from healthpipe.report import labels as lb
from healthpipe.report.charts import Chart
from healthpipe.report.model import DEFAULT_DISCLAIMER
from healthpipe.report.render import chart_views, render_template
from healthpipe.report.safe import neutralise

SHOWN_EPISODES = 50  # the newest; --json has them all
FINDINGS_LEGEND = (
    "Findings are counted as the file reports count them: a deviation from the participant's "
    "own baseline on a reading that also has a clinical finding is not counted again. "
    "Severity: high is a NEWS2 single-parameter score of 3 or an ACC/AHA hypertensive crisis."
)


def value_text(value: float | None, metric: str = "") -> str:
    """A reading with thousands separators and its unit: "1,011", "36.7 °C", "–"."""
    if value is None:
        return "–"
    text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    unit = lb.metric_unit(metric)
    return f"{text} {unit}" if unit else text


def when_text(iso: str | None) -> str:
    """An ISO time as `YYYY-MM-DD HH:MM UTC` (the lake's times are UTC)."""
    if not iso:
        return "–"
    return f"{iso[:10]} {iso[11:16]} UTC" if len(iso) >= 16 else iso


def span_text(start: str | None, end: str | None) -> str:
    """A time span, the date once when both ends share it: "2025-07-05 11:40–11:42 UTC"."""
    if not start or not end:
        return when_text(start or end)
    if start[:10] == end[:10] and len(start) >= 16 and len(end) >= 16:
        if start[11:16] == end[11:16]:
            return when_text(start)
        return f"{start[:10]} {start[11:16]}–{end[11:16]} UTC"
    return f"{when_text(start)} – {when_text(end)}"


@dataclass(frozen=True)
class VitalRow:
    label: str
    n: str
    median: str
    latest: str
    latest_time: str
    range: str
    baseline: str  # "72 ± 4 bpm" from the history store, or "–"


@dataclass(frozen=True)
class FindingRow:
    label: str
    reference: str
    criterion: str
    total: str
    worst: str
    severities: str


@dataclass(frozen=True)
class TrendRow:
    label: str
    criterion: str
    change: str
    fitted: str
    days: str


@dataclass(frozen=True)
class EpisodeRow:
    label: str
    severity: str
    readings: str
    span: str
    worst: str


@dataclass(frozen=True)
class FileRow:
    name: str
    dataset_id: str
    analysed: str
    readings: str
    findings: str
    span: str


@dataclass(frozen=True)
class HistoryView:
    pseudonym: str
    title: str
    period: str
    readings: str
    days: str
    findings_total: str
    worst_severity: str
    vitals: list[VitalRow]
    latest_at: str  # the time of every vital's latest reading, when they share it
    baseline_note: str
    findings: list[FindingRow]
    trends: list[TrendRow]
    trends_note: str
    episodes: list[EpisodeRow]
    episodes_total: int
    files: list[FileRow]
    disclaimer: str = DEFAULT_DISCLAIMER
    findings_legend: str = FINDINGS_LEGEND
    severity_colours: dict[str, str] = field(default_factory=lambda: dict(lb.SEVERITY_COLOURS))


def _start(episode: HistoryEpisode) -> str:
    return episode.start_time or ""


def worst_of(findings: list[FindingKind]) -> str:
    """The worst severity of any finding ("none" only when there is no finding at all)."""
    present = {s for f in findings for s, n in f.by_severity.items() if n}
    return max(present, key=lambda s: clinical.SEVERITY_RANK.get(s, 0), default="none")


def _baseline_text(found: TimelineBaseline | None) -> str:
    if found is None:
        return "–"
    return f"{value_text(found.median)} ± {value_text(found.spread, found.metric)}"


def baseline_note(history: ParticipantTimeline) -> str:
    """Where the baseline column comes from, in words."""
    if not history.baselines:
        return (
            "Baseline: none stored for this participant (files analysed before the history "
            "store existed, or too few readings in the window)."
        )
    found = history.baselines[0]
    return (
        f"Baseline: median ± spread of the readings from {found.window_start} to "
        f"{found.window_end} ({history.baseline_window_days} days before the last reading "
        "day, and that day), as analyze keeps it per participant: the spread is the MAD, or "
        "the mean absolute deviation when the MAD is 0, at the chart's resolution; a vital "
        f"needs at least {MIN_READINGS} readings."
    )


def trends_note(history: ParticipantTimeline) -> str:
    """What the trend rules said, in words (the flagged trends are listed separately)."""
    if not history.trends_assessed:
        spans = " or ".join(str(n) for n in sorted({r.span_days for r in TREND_RULES}))
        return (
            "Trends not assessed: too few days with readings in each trend rule's span "
            f"({spans} days ending on the last day with readings; docs/trends.md)."
        )
    if history.trends:
        return f"{len(history.trends)} trend rule(s) met: rules of docs/trends.md."
    return (
        "No trend rule is met over the spans ending on the last day with readings "
        "(rules of docs/trends.md); this says nothing about the single readings above."
    )


def finding_label(finding: FindingKind) -> str:
    """The kind's label; a kind that applies to several vitals (a deviation from the own
    baseline) says which: "Deviation from own baseline: Heart rate"."""
    info = clinical.KINDS.get(finding.kind)
    if info is not None and info.metric == finding.metric:
        return finding.label
    name = lb.METRIC_LABELS.get(finding.metric, (finding.metric.replace("_", " "), ""))[0]
    return f"{finding.label}: {name}" if name else finding.label


def build_history_view(history: ParticipantTimeline) -> HistoryView:
    label = neutralise(history.pseudonym, 40)
    days = {d.day for v in history.vitals for d in v.days}
    times = {v.latest_time for v in history.vitals if v.n}
    baselines = {b.metric: b for b in history.baselines}
    latest_at = when_text(times.pop()) if len(times) == 1 else ""
    return HistoryView(
        pseudonym=label,
        title=f"Participant {label}: history",
        period=(
            f"{when_text(history.first_reading)} → {when_text(history.last_reading)}"
            if history.first_reading
            else "no readings"
        ),
        readings=f"{history.readings:,}",
        days=f"{len(days):,}",
        findings_total=f"{history.findings_total:,}",
        worst_severity=worst_of(history.findings),
        latest_at=latest_at,
        baseline_note=baseline_note(history),
        vitals=[
            VitalRow(
                label=lb.metric_label(v.metric),
                n=f"{v.n:,}",
                median=value_text(v.median, v.metric),
                latest=value_text(v.latest, v.metric),
                latest_time="" if latest_at else when_text(v.latest_time),
                baseline=_baseline_text(baselines.get(v.metric)),
                range=(f"{value_text(v.min)}–{value_text(v.max, v.metric)}" if v.n else "–"),
            )
            for v in history.vitals
        ],
        findings=[
            FindingRow(
                label=neutralise(finding_label(f), 120),
                reference=neutralise(f.reference or "–", 40),
                criterion=neutralise(f.criterion or "–", 300),
                total=f"{f.total:,}",
                worst=worst_of([f]),
                severities=", ".join(
                    f"{f.by_severity[s]:,} {s}"
                    for s in clinical.FINDING_SEVERITIES
                    if f.by_severity.get(s)
                ),
            )
            for f in history.findings
        ],
        trends=[
            TrendRow(
                label=lb.metric_label(t.metric),
                criterion=neutralise(t.criterion, 300),
                change=f"{float(t.change):+,.1f} {lb.metric_unit(t.metric)} / {t.span_days} days",
                fitted=f"{value_text(t.start)} → {value_text(t.end, t.metric)}",
                days=f"{t.days} days with readings, {t.first_day} to {t.last_day}",
            )
            for t in history.trends
        ],
        trends_note=trends_note(history),
        episodes=[
            EpisodeRow(
                label=neutralise(lb.kind_label(e.kind), 120),
                severity=neutralise(e.severity or "none", 10),
                readings=f"{e.readings:,}",
                span=span_text(e.start_time, e.end_time),
                worst=value_text(e.worst_value, e.metric),
            )
            for e in sorted(history.episodes, key=_start, reverse=True)[:SHOWN_EPISODES]
        ],
        episodes_total=len(history.episodes),
        files=[
            FileRow(
                name=neutralise(f.name or "–", 80),
                dataset_id=neutralise(f.dataset_id, 40),
                analysed=neutralise(f.analysed or "–", 10),
                readings=f"{f.readings:,}",
                findings=f"{f.findings:,}",
                span=span_text(f.first_reading, f.last_reading),
            )
            for f in history.files
        ],
    )


def render_history_html(view: HistoryView, charts: list[Chart]) -> str:
    """The page: a single HTML file with the chart embedded as a data URI."""
    context = {**view.__dict__, "charts": chart_views(charts, inline_images=True)}
    return render_template("history.html", context)

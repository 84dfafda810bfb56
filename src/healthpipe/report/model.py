"""Builds the report's view model from a stored analysis: pseudonymised, bounded, plain data.

Every number the templates show is formatted here once, so the text and the HTML part of an
email carry exactly the same figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from healthpipe.domain import clinical as cl
from healthpipe.domain.brief import (
    NOT_ASSESSABLE,
    bp_pair_text,
    finding_sentence,
    high_participants,
    labelled_user_ids,
    participant_labels,
    plural,
    ranked_users,
    review_place,
    rule_risk_criterion,
    rule_risk_level,
)
from healthpipe.domain.documents import (
    Analysis,
    AnalystProvenance,
    Episode,
    Participant,
    RedScores,
)
from healthpipe.domain.identity import pseudonym
from healthpipe.report import labels as lb
from healthpipe.report.safe import neutralise, neutralise_all
from healthpipe.report.trends import TrendsView, trends_view

SEVERITIES = cl.FINDING_SEVERITIES
DEFAULT_DISCLAIMER = (
    "Automated analysis of wearable data for triage support only; not a diagnosis. "
    "Confirm findings clinically before acting on them."
)
# the clinical order, and alert_min_severity "never" (no finding reaches it)
SEVERITY_RANK = {**cl.SEVERITY_RANK, "never": 99}
# the personal baseline's source (docs/baselines.md): the participant's readings in the window
# before this file plus the file's, or, with none in the window, the file's alone
WITH_HISTORY = "with history"
NO_HISTORY = "no history yet"
# Where the charts close a normal band open at one end: SpO2 stops at 100 %; the diastolic
# band is shaded from 40 mmHg.
OPEN_BAND_ENDS = {"spo2": 100.0, "diastolic_bp": 40.0}


def normal_band(metric: str) -> tuple[float, float, str]:
    """`clinical.normal_range` of `metric` as the charts shade it, and its label."""
    lo, hi = cl.normal_range(metric)
    scale = cl.CHART_SCALE[metric]
    unit = lb.metric_unit(metric)

    def shown(value: float) -> str:
        return f"{value:.1f}" if scale > 1 else f"{value:g}"

    if metric not in cl.NEWS2_BY_METRIC:
        label = f"< {shown(hi + 1 / scale)} {unit} (ACC/AHA normal)"
    elif hi == math.inf:
        label = f"≥ {shown(lo)} {unit} (NEWS2 0)"
    else:
        label = f"{shown(lo)}–{shown(hi)} {unit} (NEWS2 0)"
    lo = lo if lo > -math.inf else OPEN_BAND_ENDS[metric]
    hi = hi if hi < math.inf else OPEN_BAND_ENDS[metric]
    return lo, hi, label


NORMAL_BANDS = {
    m: normal_band(m) for m in ("heart_rate", "spo2", "temp_c", "systolic_bp", "diastolic_bp")
}


def count(value: Any) -> str:
    return f"{int(value or 0):,}"


def pct(part: Any, whole: Any) -> str:
    whole = float(whole or 0)
    return f"{100.0 * float(part or 0) / whole:.1f}%" if whole else "0.0%"


def number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    rounded = round(float(value), digits)
    return f"{rounded:,g}" if abs(rounded) < 1e6 else f"{rounded:,.0f}"


# --- the view model's parts: strings formatted once, read by name in the templates ----------


@dataclass(frozen=True)
class ReasonRow:
    """A rejection reason: its label, its check code, rows and share of the rejected rows."""

    label: str
    code: str
    count: str
    pct: str


@dataclass(frozen=True)
class QualityView:
    rows_input: str
    rows_valid: str
    rows_rejected: str
    valid_pct: str
    grade: str
    reasons: list[ReasonRow]  # the top five
    more_reasons: int
    rejected_key: str
    profile: str


@dataclass(frozen=True)
class SeverityRow:
    severity: str
    count: str
    pct: str
    meaning: str


@dataclass(frozen=True)
class KindRow:
    label: str
    reference: str
    criterion: str
    count: str
    pct: str


@dataclass(frozen=True)
class AnomaliesView:
    total: str
    not_counted: str
    headline: str
    readings_flagged: str
    flagged_pct: str
    by_severity: list[SeverityRow]
    by_kind: list[KindRow]


@dataclass(frozen=True)
class ScoreRow:
    score: str
    count: str
    pct: str


@dataclass(frozen=True)
class News2View:
    distribution: list[ScoreRow]
    ge5: str
    ge7: str
    red: str
    red_by_metric: str


@dataclass(frozen=True)
class EpisodeRow:
    ref: str
    who: str
    what: str
    vital: str
    severity: str
    start: str
    duration: str
    readings: str
    peak: str


@dataclass(frozen=True)
class UserRow:
    """A row of the participant table ("–" for a participant beyond the analysis's top list)."""

    ref: str
    who: str
    worst: str
    risk: str
    findings: str
    high: str
    medium: str
    low: str
    episodes: str
    readings: str
    flagged_pct: str
    history: str = ""  # WITH_HISTORY, NO_HISTORY, or "" (an analysis from before issue 18)


@dataclass(frozen=True)
class HighRow:
    ref: str
    who: str
    count: str
    readings: list[str]  # one sentence per vital


@dataclass(frozen=True)
class MetricRow:
    name: str
    band: str
    count: str
    mean: str
    min: str
    median: str
    p95: str
    max: str


@dataclass
class ReportModel:
    dataset_id: str
    title: str
    subject: str
    generated_at: str
    source_key: str
    source_name: str
    time_range: str
    worst_severity: str
    risk_level: str
    quality: QualityView
    anomalies: AnomaliesView
    news2: News2View
    bp_categories: list[dict[str, str]]
    episodes: list[EpisodeRow]
    episodes_total: str
    users: list[UserRow]
    users_total: str
    users_flagged: str
    metrics: list[MetricRow]
    high: list[HighRow]
    high_total: str
    assessable: bool
    assessment: str
    insights: list[str]
    recommendations: list[str]
    summary: str
    analyst: dict[str, str]
    disclaimer: str
    pseudonymised: bool
    severity_colours: dict[str, str] = field(default_factory=lambda: dict(lb.SEVERITY_COLOURS))
    charts: list[dict[str, str]] = field(default_factory=list)
    charts_omitted: int = 0
    index_href: str = ""
    trends: TrendsView | None = None  # "Compared with the last N days" (issue 18)
    # beside the risk level: what it is computed from, and the flagged trends it leaves out
    risk_basis: str = ""  # "no high- or medium-severity finding"
    trends_to_review: str = ""  # "2 trends to review (compared with the last 28 days)"

    def as_context(self) -> dict[str, Any]:
        return dict(self.__dict__)


def metric_label(metric: str) -> str:
    return lb.metric_label(metric)


def findings_at_or_above(by_severity: dict[str, int], threshold: str) -> int:
    floor = SEVERITY_RANK.get(threshold, 99)
    return sum(int(n or 0) for s, n in by_severity.items() if SEVERITY_RANK.get(s, 0) >= floor)


def short_time(iso: Any) -> str:
    text = str(iso or "")
    return text[:16].replace("T", " ") + " UTC" if len(text) >= 16 else text


class People:
    """Pseudonyms (HMAC of the id) plus the analyst's P01… references for the top users."""

    def __init__(self, analysis: Analysis, secret: str, reveal: bool) -> None:
        self.refs = participant_labels(labelled_user_ids(analysis.facts(), analysis.trends))
        self.secret, self.reveal = secret, reveal

    def who(self, user_id: Any) -> str:
        uid = str(user_id)
        return neutralise(uid, 64) if self.reveal else pseudonym(uid, self.secret)

    def ref(self, user_id: Any) -> str:
        return self.refs.get(str(user_id), "")


def _quality(analysis: Analysis) -> QualityView:
    q = analysis.data_quality
    rows_input, rows_rejected = q.rows_input, q.rows_rejected
    valid = 100.0 * q.rows_valid / rows_input if rows_input else 0.0
    reasons = list(q.reasons.items())
    return QualityView(
        rows_input=count(rows_input),
        rows_valid=count(q.rows_valid),
        rows_rejected=count(rows_rejected),
        valid_pct=f"{valid:.1f}%",
        grade=lb.quality_grade(valid),
        reasons=[
            ReasonRow(
                label=lb.reason_label(str(code)),
                code=neutralise(code, 60),
                count=count(n),
                pct=pct(n, rows_rejected),
            )
            for code, n in reasons[:5]
        ],
        more_reasons=max(0, len(reasons) - 5),
        rejected_key=neutralise(q.rejected_key, 300) if q.rejected_key else "",
        profile=neutralise(q.rules_profile or "", 60),
    )


def _anomalies(analysis: Analysis) -> AnomaliesView:
    """Findings as the headline counts them: a baseline finding on a reading that already has
    a clinical finding is not a second finding (`not_counted` says how many were left out;
    the anomaly file keeps them)."""
    a = analysis.anomalies
    by_severity = analysis.headline_by_severity()
    total = sum(by_severity.values())
    by_kind = []
    for kind, n in analysis.headline_by_kind().items():
        reference, criterion = lb.kind_reference(str(kind))
        by_kind.append(
            KindRow(
                label=neutralise(lb.kind_label(str(kind)), 80),
                reference=reference,
                criterion=criterion,
                count=count(n),
                pct=pct(n, total),
            )
        )
    return AnomaliesView(
        total=count(total),
        not_counted=count(max(0, a.total - total)),
        headline=f"{plural(total, 'finding')} on {plural(a.readings_flagged, 'reading')}",
        readings_flagged=count(a.readings_flagged),
        flagged_pct=pct(a.readings_flagged, analysis.readings),
        by_severity=[
            SeverityRow(
                severity=s,
                count=count(by_severity.get(s, 0)),
                pct=pct(by_severity.get(s, 0), total),
                meaning=lb.SEVERITY_MEANING[s],
            )
            for s in SEVERITIES
        ],
        by_kind=by_kind,
    )


def _news2(analysis: Analysis) -> News2View:
    news2 = analysis.news2_partial
    red = analysis.red_scores or RedScores()
    distribution = news2.distribution
    total = sum(distribution.values())
    return News2View(
        distribution=[
            ScoreRow(score=str(score), count=count(n), pct=pct(n, total))
            for score, n in sorted(distribution.items(), key=lambda item: int(item[0]))
        ],
        ge5=count(news2.readings_score_5_or_more),
        ge7=count(news2.readings_score_7_or_more),
        red=count(red.readings),
        red_by_metric=", ".join(
            f"{lb.METRIC_LABELS.get(m, (m, ''))[0]} {count(n)}"
            for m, n in red.by_metric.items()
            if n
        ),
    )


def _bp(analysis: Analysis) -> list[dict[str, str]]:
    categories = analysis.bp_categories
    total = sum(categories.values())
    return [
        {
            "label": text,
            "count": count(categories.get(name, 0)),
            "pct": pct(categories.get(name, 0), total),
        }
        for name, text in lb.BP_CATEGORY_LABELS.items()
    ]


def _episodes(analysis: Analysis, people: People, limit: int) -> list[EpisodeRow]:
    return [
        EpisodeRow(
            ref=people.ref(e.user_id),
            who=people.who(e.user_id),
            what=lb.kind_label(e.kind),
            vital=lb.METRIC_LABELS.get(e.metric, (e.metric, ""))[0],
            severity=e.severity,
            start=short_time(e.start_time),
            duration=lb.duration_text(float(e.duration_s or 0)),
            readings=count(e.readings),
            peak=worst_value_text(e),
        )
        for e in analysis.episodes.items[:limit]
    ]


def headline_counts(user: Participant) -> dict[str, int]:
    """A participant's findings, high, medium and low as the headline counts them: without a
    baseline finding on a reading that has a clinical finding (an analysis from before
    `headline` was added: every finding)."""
    counted = user.headline
    if counted is not None and counted.model_fields_set:
        return {k: getattr(counted, k) for k in ("findings", "high", "medium", "low")}
    return {"findings": user.anomalies, "high": user.high, "medium": user.medium, "low": user.low}


def _baseline_source(has_history: bool | None) -> str:
    if has_history is None:
        return ""
    return WITH_HISTORY if has_history else NO_HISTORY


def _users(analysis: Analysis, people: People, limit: int) -> list[UserRow]:
    """The participant table, worst severity first; every participant with a high-severity
    finding is in it, whatever the limit."""
    facts = analysis.facts()
    ranked = ranked_users(facts)
    shown = ranked[:limit]
    listed = {u.user_id for u in shown}
    high_ids = [p.user_id for p in high_participants(facts)]
    shown += [u for u in ranked[limit:] if u.user_id in high_ids]
    listed |= {u.user_id for u in shown}
    rows = []
    for u in shown:
        counted = headline_counts(u)
        rows.append(
            UserRow(
                ref=people.ref(u.user_id),
                who=people.who(u.user_id),
                worst=u.worst or "none",
                risk=number(u.risk_score, 2),
                findings=count(counted["findings"]),
                high=count(counted["high"]),
                medium=count(counted["medium"]),
                low=count(counted["low"]),
                episodes=count(u.episodes),
                readings=count(u.readings),
                flagged_pct=flagged_share(u),
                history=_baseline_source(u.has_history),
            )
        )
    for person in high_participants(facts):
        if person.user_id not in listed:  # beyond the analysis's own top list
            rows.append(
                UserRow(
                    ref=people.ref(person.user_id),
                    who=people.who(person.user_id),
                    worst="high",
                    risk="–",
                    findings="–",
                    high=count(person.high),
                    medium="–",
                    low="–",
                    episodes="–",
                    readings="–",
                    flagged_pct="–",
                )
            )
    return rows


def flagged_share(user: Participant) -> str:
    """The share of a participant's readings with at least one finding (never above 100 %)."""
    readings = user.readings
    if "readings_flagged" not in user.model_fields_set or not readings:
        return "–"
    return pct(min(user.readings_flagged, readings), readings)


def worst_value_text(episode: Episode) -> str:
    """'lowest 85 %' for low kinds, 'highest 131 bpm' for high ones; blood pressure always as
    a pair, a part the reading lacks as '–' ('highest –/125 mmHg'; an analysis from before
    the pair was stored: 'highest 172/– mmHg', its systolic value)."""
    kind, metric = episode.kind, episode.metric
    word = episode.worst or lb.worst_word(kind)
    systolic, diastolic = episode.worst_systolic_bp, episode.worst_diastolic_bp
    if systolic is not None and diastolic is not None:
        return f"{word} {bp_pair_text(systolic, diastolic)}"
    if metric == "blood_pressure":
        if systolic is None and diastolic is None:
            systolic = episode.peak_value
        return f"{word} {_part(systolic)}/{_part(diastolic)} mmHg"
    unit = lb.metric_unit(metric)
    return f"{word} {number(episode.peak_value)} {unit}".strip()


def _part(value: Any) -> str:
    return "–" if value is None else f"{round(float(value), 2):g}"


def _high(analysis: Analysis, people: People) -> list[HighRow]:
    """Every participant with a high-severity finding, worst first, with the sentences naming
    the vital, the value and the time (blood pressure as a pair)."""
    listed = high_participants(analysis.facts())
    order = list(people.refs)
    return [
        HighRow(
            ref=people.ref(p.user_id),
            who=people.who(p.user_id),
            count=plural(p.high, "high-severity finding"),
            readings=[neutralise(finding_sentence(f), 300) for f in p.findings],
        )
        for p in sorted(listed, key=lambda p: review_place(order, p.user_id))
    ]


def _metrics(analysis: Analysis) -> list[MetricRow]:
    rows = []
    for m, s in analysis.metrics.items():
        band = NORMAL_BANDS[m][2] if m in NORMAL_BANDS else "–"
        rows.append(
            MetricRow(
                name=lb.metric_label(m),
                band=band if s.count or m not in NORMAL_BANDS else NOT_ASSESSABLE,
                count=count(s.count),
                mean=number(s.mean),
                min=number(s.min),
                median=number(s.median),
                p95=number(s.p95),
                max=number(s.max),
            )
        )
    return rows


def risk_basis(analysis: Analysis, level: str) -> str:
    """What the shown risk `level` says of this file's readings: the builtin rule's criterion
    (`domain/brief.rule_risk_level`); a level an analyst set above (or, in an older analysis,
    below) the rule says so and names the rule's level with its criterion."""
    crisis = int(analysis.episodes.by_kind.get("hypertensive_crisis", 0) or 0)
    counts = (analysis.readings, dict(analysis.anomalies.by_severity), crisis)
    rule = rule_risk_level(*counts)
    criterion = rule_risk_criterion(rule, *counts)
    if level == rule:
        return criterion
    return f"the analyst's judgement; the rule gives {rule}: {criterion}"


@dataclass(frozen=True)
class FileRisk:
    """The risk from one file's readings, as its report and the digest state it: the level
    (`NOT_ASSESSABLE` without valid readings), the criterion it meets (`risk_basis`; "" when
    not assessable) and the flagged trends counted beside it (`trends_to_review`)."""

    assessable: bool
    level: str
    basis: str
    trends_to_review: str


def file_risk(analysis: Analysis) -> FileRisk:
    assessment = analysis.assessment
    assessable = assessment.assessable if assessment is not None else analysis.readings > 0
    level = neutralise(analysis.risk_level or "low", 40) if assessable else NOT_ASSESSABLE
    basis = neutralise(risk_basis(analysis, level), 300) if assessable else ""
    return FileRisk(assessable, level, basis, trends_to_review(analysis))


def trends_to_review(analysis: Analysis, *, window: bool = True) -> str:
    """The flagged trends across uploads, counted beside the risk level they do not enter
    ("2 trends to review (compared with the last 28 days)"; "" without any)."""
    trends = analysis.trends
    if trends is None or not trends.flagged:
        return ""
    counted = f"{plural(len(trends.flagged), 'trend')} to review"
    return f"{counted} (compared with the last {trends.window_days} days)" if window else counted


def _analyst(analysis: Analysis) -> dict[str, str]:
    info = analysis.analyst or AnalystProvenance(provider="", model="")
    usage = analysis.usage
    grounding = analysis.grounding  # "removed": all the guards took out
    dropped = grounding.removed if grounding.removed is not None else len(grounding.dropped)
    risk = (grounding.model_extra or {}).get("risk") or {}
    raised_from = str(risk.get("model") or "") if risk.get("raised") else ""
    return {
        "provider": neutralise(info.provider or "unknown", 60),
        "model": neutralise(info.model or "unknown", 100),
        "fallback": neutralise(info.fallback_reason or "", 200),
        "tokens": count(usage.input_tokens + usage.output_tokens),
        "cost": f"${usage.cost_usd:.4f}",
        "dropped": str(dropped),
        "risk_raised_from": neutralise(raised_from, 10),
    }


def build_report_model(
    analysis: Analysis,
    *,
    secret: str,
    reveal_ids: bool = False,
    top_users: int = 10,
    top_episodes: int = 15,
) -> ReportModel:
    people = People(analysis, secret, reveal_ids)
    risk = file_risk(analysis)
    assessable = risk.assessable
    worst = neutralise(analysis.worst_severity or "none", 10) if assessable else NOT_ASSESSABLE
    day = analysis.created_at[:10]
    source_key = neutralise(analysis.source.key, 300)
    source_name = neutralise(analysis.source.key.rsplit("/", 1)[-1], 80)
    span = analysis.time_range
    dataset_id = neutralise(analysis.dataset_id, 40)
    trends = risk.trends_to_review
    return ReportModel(
        dataset_id=dataset_id,
        title=f"Vitals report · {source_name}",
        subject=(
            f"healthpipe report {day} | {source_name} | dataset {dataset_id}"
            f" | {'worst severity: ' if assessable else ''}{worst}"
            + (f" | {trends_to_review(analysis, window=False)}" if trends else "")
        ),
        generated_at=short_time(analysis.created_at),
        source_key=source_key,
        source_name=source_name,
        time_range=f"{short_time(span.start)} → {short_time(span.end)}"
        if span.model_fields_set
        else "–",
        worst_severity=worst,
        risk_level=risk.level,
        quality=_quality(analysis),
        anomalies=_anomalies(analysis),
        news2=_news2(analysis),
        bp_categories=_bp(analysis),
        episodes=_episodes(analysis, people, top_episodes),
        episodes_total=count(analysis.episodes.total),
        users=_users(analysis, people, top_users),
        users_total=count(analysis.users.total),
        users_flagged=count(analysis.users.flagged),
        metrics=_metrics(analysis),
        high=_high(analysis, people),
        high_total=count(analysis.high_participants.total if analysis.high_participants else 0),
        assessable=assessable,
        assessment="assessed" if assessable else NOT_ASSESSABLE,
        insights=neutralise_all(list(analysis.insights)),
        recommendations=neutralise_all(list(analysis.recommendations)),
        summary=neutralise(analysis.summary, 2000),
        analyst=_analyst(analysis),
        disclaimer=neutralise(analysis.disclaimer or DEFAULT_DISCLAIMER, 1000),
        pseudonymised=not reveal_ids,
        trends=trends_view(analysis.trends, people.ref, people.who),
        risk_basis=risk.basis,
        trends_to_review=trends,
    )

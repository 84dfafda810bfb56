"""The analyst's brief: de-identified aggregates only.

No raw rows and no user ids: participants appear as P01, P02, … in order of severity (the
worst finding first, then the number of findings), and the brief stays the same size whatever
the file size. Besides the counts it carries the shares an analyst is likely to quote
(`shares_pct`) and the clinical thresholds the findings are based on (`reference`), so that
every number a grounded text needs is in the brief itself.

Severity first: every participant with a high-severity finding (a NEWS2 single-parameter
score of 3, or an ACC/AHA hypertensive crisis) is in `participants_at_risk` and in
`high_severity`, whatever the ranking, each with a deterministic sentence naming the vital,
the value and the time of the worst reading ("SpO2 85 % at 2026-01-03 10:00 UTC"): the only
individual timestamps in the brief. A file without valid readings is `not assessable`
(`assessment`), never "low risk".
"""

from __future__ import annotations

import math
from typing import Any

from healthpipe.domain import clinical
from healthpipe.domain.documents import (
    AnalysisFacts,
    Assessment,
    AtRisk,
    Brief,
    BriefEpisode,
    BriefEpisodes,
    BriefFindings,
    BriefQuality,
    BriefStats,
    BriefTrend,
    DataQuality,
    Episode,
    Finding,
    HighParticipant,
    HighPerson,
    HighSeverity,
    Participant,
    RedScores,
    SevereFinding,
    Shares,
    Trend,
    Trends,
)
from healthpipe.domain.episodes import MIN_EPISODE_READINGS

BRIEF_TOP_USERS = 10
NOT_ASSESSABLE = "not assessable: no valid readings"
CLINICAL_VITALS = ("heart_rate", "spo2", "temp_c", "systolic_bp", "diastolic_bp")
SEVERITY_RANK = clinical.SEVERITY_RANK
# vital -> (name in a sentence, unit)
VITAL_WORDS = {
    "heart_rate": ("heart rate", "bpm"),
    "spo2": ("SpO2", "%"),
    "temp_c": ("temperature", "°C"),
    "systolic_bp": ("systolic BP", "mmHg"),
    "diastolic_bp": ("diastolic BP", "mmHg"),
    "blood_pressure": ("blood pressure", "mmHg"),
}
BRIEF_TOP_EPISODES = 10
BRIEF_TOP_TRENDS = 20  # flagged trends in the brief (the analysis keeps them all)
STAT_KEYS = ("count", "mean", "std", "min", "p05", "median", "p95", "max")
USER_KEYS = ("readings", "anomalies", "high", "medium", "low", "episodes", "worst", "risk_score")
REJECT_RATE_WARNING_PCT = 5
NEWS2_URGENT, NEWS2_EMERGENCY = 5, 7


def participant_labels(user_ids: list[str]) -> dict[str, str]:
    width = max(2, len(str(len(user_ids))))
    return {uid: f"P{i:0{width}d}" for i, uid in enumerate(user_ids, start=1)}


def pct(part: float, whole: float) -> float:
    """A share in percent, rounded to one decimal (0 when the whole is 0)."""
    return round(100.0 * part / whole, 1) if whole else 0.0


def _profile_name(profile: Any) -> str | None:
    """A rules profile name; a custom profile's file path is reduced to its stem."""
    if not profile:
        return None
    text = str(profile).replace("\\", "/").rsplit("/", 1)[-1]
    return text.removesuffix(".toml")


def reference_thresholds() -> dict[str, Any]:
    """The clinical thresholds behind the findings (upper bounds of each NEWS2 band)."""
    news2 = {
        p.metric: [b.upper for b in p.bands if not math.isinf(b.upper)]
        for p in clinical.NEWS2_PARAMETERS
    }
    return {
        "news2_band_upper_limits": news2,
        "news2_urgent_review_score": NEWS2_URGENT,
        "news2_emergency_score": NEWS2_EMERGENCY,
        "bp_mmhg": {
            "crisis_systolic_above": clinical.CRISIS_SYSTOLIC_ABOVE,
            "crisis_diastolic_above": clinical.CRISIS_DIASTOLIC_ABOVE,
            "stage_2_systolic_from": clinical.STAGE_2_SYSTOLIC_FROM,
            "stage_2_diastolic_from": clinical.STAGE_2_DIASTOLIC_FROM,
            "stage_1_systolic_from": clinical.STAGE_1_SYSTOLIC_FROM,
            "stage_1_diastolic_from": clinical.STAGE_1_DIASTOLIC_FROM,
            "elevated_systolic_from": clinical.ELEVATED_SYSTOLIC_FROM,
        },
        "news2_red_score": 3,
        "criteria": {kind: info.criterion for kind, info in clinical.KINDS.items()},
        "episode_min_consecutive_readings": MIN_EPISODE_READINGS,
        "reject_rate_warning_pct": REJECT_RATE_WARNING_PCT,
    }


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 finding', '2 findings' (`many` for irregular plurals)."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def number_text(value: Any) -> str:
    """A reading as written on a chart: 85, 36.4 (no trailing .0)."""
    return f"{round(float(value), 2):g}"


def time_text(iso: Any) -> str:
    """2026-01-03T10:00:00+00:00 -> '2026-01-03 10:00 UTC'."""
    text = str(iso or "")
    return text[:16].replace("T", " ") + " UTC" if len(text) >= 16 else text


def assessment(facts: AnalysisFacts) -> Assessment:
    """Whether the file could be assessed: no valid reading (or no reading of a vital) is
    "not assessable: no valid readings", which no risk level stands for."""
    readings = facts.readings
    metrics = facts.metrics
    missing = [m for m in CLINICAL_VITALS if readings and not (m in metrics and metrics[m].count)]
    return Assessment(
        assessable=readings > 0,
        status="assessed" if readings else NOT_ASSESSABLE,
        vitals_not_assessable={
            m: NOT_ASSESSABLE for m in (CLINICAL_VITALS if not readings else missing)
        },
    )


CRITICAL_HIGH_SHARE = 0.05  # "critical": high-severity findings in ≥ 5 % of the readings


def rule_risk_level(readings: int, by_severity: dict[str, int], crisis_episodes: int) -> str:
    """The builtin analyst's risk level from one file's findings (readings assessed):
    critical with a sustained hypertensive-crisis episode or high-severity findings in 5 %
    of the valid readings or more, high with any high-severity finding, moderate with a
    medium-severity one, else low. Trends across uploads do not enter it."""
    high = int(by_severity.get("high", 0) or 0)
    if crisis_episodes or high / max(readings, 1) >= CRITICAL_HIGH_SHARE:
        return "critical"
    if high:
        return "high"
    if int(by_severity.get("medium", 0) or 0):
        return "moderate"
    return "low"


def rule_risk_criterion(
    level: str, readings: int, by_severity: dict[str, int], crisis_episodes: int
) -> str:
    """What `rule_risk_level` found for `level`, in words (no figure: the grounding check
    reads no ordinal): "low" reads as "no high- or medium-severity finding in this file",
    not as "all clear"."""
    if level == "critical":
        reasons = []
        if crisis_episodes:
            reasons.append("a sustained hypertensive-crisis episode")
        if int(by_severity.get("high", 0) or 0) / max(readings, 1) >= CRITICAL_HIGH_SHARE:
            reasons.append("high-severity findings numbering a twentieth of the readings or more")
        return " and ".join(reasons)
    return {
        "high": "at least one high-severity finding",
        "moderate": "medium-severity findings, no high-severity one",
        "low": "no high- or medium-severity finding",
    }.get(level, "")


def risk_level(facts: AnalysisFacts, analyst_level: str) -> str:
    """The stored risk level: the analyst's, except for a file that could not be assessed
    (never "low")."""
    return analyst_level if facts.readings > 0 else NOT_ASSESSABLE


def rank_key(user: Participant) -> tuple[int, int, int, int]:
    """Worst severity first, then the number of high, medium and all findings."""
    return (-SEVERITY_RANK.get(user.worst, 0), -user.high, -user.medium, -user.anomalies)


def ranked_users(facts: AnalysisFacts) -> list[Participant]:
    """The listed participants, worst severity first (a stable sort keeps the analysis's
    order among equals)."""
    return sorted(facts.users.top, key=rank_key)


def high_participants(facts: AnalysisFacts) -> list[HighParticipant]:
    return facts.high_participants.items if facts.high_participants else []


def review_user_ids(facts: AnalysisFacts, top: int = BRIEF_TOP_USERS) -> list[str]:
    """Who an analyst and a reader see, in order: the `top` first participants by severity,
    plus every participant with a high-severity finding, whatever the ranking."""
    ids = [u.user_id for u in ranked_users(facts)[:top]]
    for person in high_participants(facts):
        if person.user_id not in ids:
            ids.append(person.user_id)
    return ids


def labelled_user_ids(facts: AnalysisFacts, trends: Trends | None) -> list[str]:
    """Who gets a P01… label, in order: `review_user_ids`, then the participants with a
    flagged trend (the brief and the report label them alike)."""
    ids = review_user_ids(facts)
    flagged = trends.flagged[:BRIEF_TOP_TRENDS] if trends else []
    return ids + list(dict.fromkeys(t.user_id for t in flagged if t.user_id not in ids))


def bp_trigger_text(kind: str, systolic: float, diastolic: float) -> str:
    """Which part of the pair puts it in its ACC/AHA category, in the guideline's words."""
    limits = {
        "hypertensive_crisis": (
            "above",
            clinical.CRISIS_SYSTOLIC_ABOVE,
            clinical.CRISIS_DIASTOLIC_ABOVE,
        ),
        "hypertension_stage_2": (
            "≥",
            clinical.STAGE_2_SYSTOLIC_FROM,
            clinical.STAGE_2_DIASTOLIC_FROM,
        ),
        "hypertension_stage_1": (
            "≥",
            clinical.STAGE_1_SYSTOLIC_FROM,
            clinical.STAGE_1_DIASTOLIC_FROM,
        ),
    }
    if kind not in limits:
        return ""
    word, s_limit, d_limit = limits[kind]
    part = clinical.bp_trigger(systolic, diastolic)
    texts = {
        "systolic": f"systolic {word} {s_limit}",
        "diastolic": f"diastolic {word} {d_limit}",
        "both": f"systolic {word} {s_limit} and diastolic {word} {d_limit}",
    }
    return texts.get(str(part), "")


def bp_pair_text(systolic: Any, diastolic: Any) -> str:
    return f"{number_text(systolic)}/{number_text(diastolic)} mmHg"


def kind_text(kind: str) -> str:
    info = clinical.KINDS.get(kind)
    return info.label if info else kind.replace("_", " ")


def finding_sentence(finding: SevereFinding | Finding) -> str:
    """'SpO2 85 % at 2026-01-03 10:00 UTC — Low SpO2 (NEWS2 3)'; blood pressure as a pair
    with the part that triggered its category."""
    metric, kind = finding.metric, finding.kind
    name, unit = VITAL_WORDS.get(metric, (metric.replace("_", " "), ""))
    at = time_text(finding.event_time)
    if isinstance(finding, Finding):
        systolic, diastolic = finding.systolic_bp, finding.diastolic_bp
    else:
        systolic, diastolic = finding.systolic, finding.diastolic
    if systolic is not None and diastolic is not None:
        s, d = float(systolic), float(diastolic)
        trigger = bp_trigger_text(kind, s, d)
        what = kind_text(kind) + (f": {trigger}" if trigger else "")
        return f"{name} {bp_pair_text(s, d)} at {at} — {what}"
    value = f"{number_text(finding.value)} {unit}".strip()
    return f"{name} {value} at {at} — {kind_text(kind)}"


def review_place(order: list[str], user_id: Any) -> int:
    """Where a participant is in the review order (unknown ones last)."""
    uid = str(user_id)
    return order.index(uid) if uid in order else len(order)


def high_severity(facts: AnalysisFacts, labels: dict[str, str]) -> HighSeverity:
    """Every participant with a high-severity finding, with the sentences naming them."""
    total = facts.high_participants.total if facts.high_participants else 0
    people = []
    order = list(labels)
    for person in sorted(high_participants(facts), key=lambda p: review_place(order, p.user_id)):
        ref = labels.get(person.user_id, "")
        sentences = [finding_sentence(f) for f in person.findings]
        people.append(
            HighPerson(
                participant=ref,
                high_findings=person.high,
                readings=sentences,
                sentence=f"{ref} ({plural(person.high, 'high-severity finding')}): "
                + "; ".join(sentences),
            )
        )
    return HighSeverity(participants=total, list=people)


def red_scores(facts: AnalysisFacts) -> RedScores:
    red = facts.red_scores
    return RedScores(
        readings=red.readings if red else 0, by_metric=dict(red.by_metric) if red else {}
    )


def longest_episode(facts: AnalysisFacts) -> tuple[Episode, bool] | None:
    """The longest episode of the whole file (by readings), and whether that is certain: the
    listed episodes are the most severe ones, so when some are not listed the longest
    listed one is said to be that."""
    episodes = facts.episodes
    listed = episodes.items
    longest = episodes.longest or max(
        listed, key=lambda e: (e.readings, float(e.duration_s or 0)), default=None
    )
    if not longest:
        return None
    return longest, bool(episodes.longest) or len(listed) >= episodes.total


def _shares(facts: AnalysisFacts, quality: DataQuality) -> Shares:
    readings = facts.readings
    bp = facts.bp_categories
    news2 = facts.news2_partial
    severe_bp = bp.get("hypertension_stage_2", 0) + bp.get("hypertensive_crisis", 0)
    return Shares(
        readings_flagged=pct(facts.anomalies.readings_flagged, readings),
        rows_rejected=pct(quality.rows_rejected, quality.rows_input),
        participants_flagged=pct(facts.users.flagged, facts.users.total),
        news2_score_5_or_more=pct(news2.readings_score_5_or_more, readings),
        news2_score_7_or_more=pct(news2.readings_score_7_or_more, readings),
        bp_stage_2_or_crisis=pct(severe_bp, readings),
        bp_categories={name: pct(n, readings) for name, n in bp.items()},
    )


def build_brief(facts: AnalysisFacts, quality: DataQuality, trends: Trends | None = None) -> Brief:
    """Reduce the analysis facts (and the flagged trends across uploads) to what an analyst
    may see; a participant with a flagged trend gets a label too."""
    ids = labelled_user_ids(facts, trends)
    flagged = trends.flagged[:BRIEF_TOP_TRENDS] if trends else []
    labels = participant_labels(ids)
    trend_facts: dict[str, Any] = (
        {
            "trends_window_days": trends.window_days,
            "trends": [_trend(t, labels[t.user_id]) for t in flagged],
        }
        if trends
        else {}
    )
    users = {u.user_id: u for u in facts.users.top}
    longest = longest_episode(facts)
    episodes = [e for e in facts.episodes.items if e.user_id in labels]
    anomalies = facts.anomalies
    return Brief(
        assessment=assessment(facts),
        data_quality=BriefQuality(
            rows_input=quality.rows_input,
            rows_valid=quality.rows_valid,
            rows_rejected=quality.rows_rejected,
            reject_reasons=dict(list(quality.reasons.items())[:8]),
            rules_profile=_profile_name(quality.rules_profile),
        ),
        readings=facts.readings,
        participants=facts.users.total,
        participants_flagged=facts.users.flagged,
        shares_pct=_shares(facts, quality),
        metrics={
            metric: BriefStats(**{k: getattr(stats, k) for k in STAT_KEYS})
            for metric, stats in facts.metrics.items()
        },
        news2_partial=facts.news2_partial,
        red_scores=red_scores(facts),
        high_severity=high_severity(facts, labels),
        bp_categories=dict(facts.bp_categories),
        anomalies=BriefFindings(
            total=anomalies.total,
            readings_flagged=anomalies.readings_flagged,
            by_severity=dict(anomalies.by_severity),
            by_kind=dict(anomalies.by_kind),
            by_metric=dict(anomalies.by_metric),
            headline_by_kind=facts.headline_by_kind(),
            headline_by_severity=facts.headline_by_severity(),
        ),
        episodes=BriefEpisodes(
            total=facts.episodes.total,
            by_kind=dict(facts.episodes.by_kind),
            longest=_episode(longest[0], labels, whole_file=longest[1]) if longest else None,
            top=[_episode(e, labels) for e in episodes[:BRIEF_TOP_EPISODES]],
        ),
        participants_at_risk=[
            AtRisk(participant=labels[uid], **{k: getattr(users[uid], k) for k in USER_KEYS})
            for uid in ids
            if uid in users
        ],
        **trend_facts,
        reference=reference_thresholds(),
    )


def _trend(trend: Trend, participant: str) -> BriefTrend:
    return BriefTrend(
        participant=participant,
        **trend.model_dump(
            include={"metric", "rule", "criterion", "span_days", "days", "change", "start", "end"}
        ),
    )


def trend_sentence(trend: BriefTrend) -> str:
    """'P03: daily median heart rate from 74.1 to 89.3 bpm over 14 days with readings (+16.3
    bpm per 14 days by the Theil–Sen slope) — flagged: daily median heart rate rising …'."""
    name, unit = VITAL_WORDS.get(trend.metric, (trend.metric.replace("_", " "), ""))
    change = f"{float(trend.change):+g}"
    return (
        f"{trend.participant}: daily median {name} from {number_text(trend.start)} to "
        f"{number_text(trend.end)} {unit} over {trend.days} days with readings "
        f"({change} {unit} per {trend.span_days} days by the Theil–Sen slope) — flagged: "
        f"{trend.criterion}"
    )


def _episode(e: Episode, labels: dict[str, str], **whole_file: bool) -> BriefEpisode:
    return BriefEpisode(
        participant=labels.get(e.user_id, ""),
        metric=e.metric,
        kind=e.kind,
        severity=e.severity,
        readings=e.readings,
        duration_minutes=round(float(e.duration_s or 0) / 60, 1),
        peak_value=e.peak_value,
        **whole_file,
    )

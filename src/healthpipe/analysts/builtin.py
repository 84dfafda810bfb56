"""The builtin analyst: deterministic insights written from the computed facts.

It is the offline default and the fallback of every LLM analyst. Every number it writes is
taken from the brief (counts, `shares_pct`, `reference` thresholds), so its text passes the
same grounding check as a model's; the check's record is kept with the report.
"""

from __future__ import annotations

from healthpipe.analysts.grounding import check_grounding
from healthpipe.domain import clinical
from healthpipe.domain.brief import (
    NOT_ASSESSABLE,
    VITAL_WORDS,
    plural,
    rule_risk_criterion,
    rule_risk_level,
    trend_sentence,
)
from healthpipe.domain.documents import Brief
from healthpipe.domain.insights import MAX_ITEMS, AnalystReport, InsightSet, RiskLevel
from healthpipe.ports import Analyst

HIGH_SENTENCES = 5  # participants named one by one in the insights; all are in the review list


def _label(kind: str) -> str:
    """A kind as the chart names it, from the single source (`clinical.KINDS`)."""
    if kind == "baseline_deviation":
        return "deviation from a participant's own baseline"
    info = clinical.KINDS.get(kind)
    if info is None:
        return kind.replace("_", " ")
    label = f"{info.label[:1].lower()}{info.label[1:]}"
    if label.endswith(")"):  # "tachycardia (NEWS2 3; heart rate ≥ 131 bpm)"
        return f"{label[:-1]}; {info.criterion})"
    return f"{label} ({info.criterion})"


def _assessable(brief: Brief) -> bool:
    return brief.assessment.assessable


def _has_kind(by_kind: dict[str, int], *prefixes: str) -> bool:
    return any(str(k).startswith(prefixes) and int(n or 0) for k, n in by_kind.items())


def risk_level(brief: Brief) -> RiskLevel:
    """The cohort's risk from its findings (`domain/brief.rule_risk_level`). A file without
    valid readings has no risk level: the analysis stores "not assessable" instead
    (`domain/brief.assessment_fields`); the level returned for it here is never "low"."""
    if not _assessable(brief):
        return "moderate"
    level: RiskLevel = rule_risk_level(*_risk_inputs(brief))  # type: ignore[assignment]
    return level


def risk_criterion(brief: Brief, level: str) -> str:
    """What `risk_level` found for `level`, in words (`domain/brief.rule_risk_criterion`)."""
    return rule_risk_criterion(level, *_risk_inputs(brief))


def _risk_inputs(brief: Brief) -> tuple[int, dict[str, int], int]:
    crisis_episodes = int(brief.episodes.by_kind.get("hypertensive_crisis", 0))
    return brief.readings, dict(brief.anomalies.by_severity), crisis_episodes


class BuiltinAnalyst(Analyst):
    provider = "builtin"
    model = "healthpipe-rules-v1"

    def _analyze(self, brief: Brief) -> AnalystReport:
        result = InsightSet(
            insights=self._insights(brief),
            recommendations=self._recommendations(brief),
            summary=self._summary(brief),
            risk_level=risk_level(brief),
        )
        grounding = check_grounding(result, brief.as_json())
        return AnalystReport(
            result=grounding.result or result,
            provider=self.provider,
            model=self.model,
            grounding=grounding.record(),
        )

    @staticmethod
    def _insights(brief: Brief) -> list[str]:
        if not _assessable(brief):
            return _not_assessable_insights(brief)
        out = _high_insights(brief) + _trend_insights(brief)
        readings = brief.readings
        anomalies = brief.anomalies
        severity = anomalies.headline_by_severity or anomalies.by_severity
        shares = brief.shares_pct
        high, medium = int(severity.get("high", 0)), int(severity.get("medium", 0))
        out.append(
            f"{anomalies.readings_flagged:,} of {plural(readings, 'valid reading')} "
            f"({shares.readings_flagged}%) had at least one finding; "
            f"{plural(high, 'finding')} {'was' if high == 1 else 'were'} high severity, "
            f"{medium:,} medium and {int(severity.get('low', 0)):,} low."
        )
        by_kind = anomalies.headline_by_kind or anomalies.by_kind
        clinical_kinds = {k: n for k, n in by_kind.items() if k != "baseline_deviation" and n}
        if clinical_kinds:
            kind, n = next(iter(clinical_kinds.items()))
            out.append(
                f"The most frequent clinical finding was {_label(kind)}: "
                f"{plural(int(n), 'finding')}."
            )
        if by_kind.get("baseline_deviation"):
            n = int(by_kind["baseline_deviation"])
            out.append(
                f"{plural(n, 'reading')} deviated from the participant's own baseline without "
                "reaching a clinical threshold."
            )
        out.append(_news2_insight(brief))
        bp = brief.bp_categories
        stage_2, crisis = (
            int(bp.get("hypertension_stage_2", 0)),
            int(bp.get("hypertensive_crisis", 0)),
        )
        if stage_2 or crisis:
            out.append(
                f"{plural(stage_2, 'reading')} {'was' if stage_2 == 1 else 'were'} in ACC/AHA "
                f"stage 2 hypertension and {crisis:,} in hypertensive crisis (systolic above 180 "
                f"and/or diastolic above 120 mmHg; {shares.bp_stage_2_or_crisis}% of readings "
                "together)."
            )
        out += _episode_insights(brief)
        out += _missing_vitals(brief)
        out += _quality_insights(brief)
        return out[:MAX_ITEMS]

    @staticmethod
    def _recommendations(brief: Brief) -> list[str]:
        quality = brief.data_quality
        if not _assessable(brief):
            return [
                "No clinical assessment was possible (not assessable: no valid readings): check "
                "the device export and the rejected-rows file, then upload the file again."
            ]
        out: list[str] = []
        high = [p.participant for p in brief.high_severity.items]
        if high:
            out.append(
                "Review first the participants with high-severity findings, worst first: "
                + ", ".join(high)
                + "."
            )
        if brief.trends:
            out.append(
                f"Compare the flagged trends over the last {brief.trends_window_days} days "
                "with symptoms, medication and activity, and repeat the measurement: "
                + ", ".join(dict.fromkeys(t.participant for t in brief.trends))
                + "."
            )
        if brief.red_scores.readings:
            out.append(
                "A NEWS2 red score (one parameter scoring 3) calls for an urgent clinical review "
                "on its own: confirm the reading and escalate if it is confirmed."
            )
        by_kind = brief.anomalies.by_kind
        if by_kind.get("hypertensive_crisis"):
            out.append(
                "Repeat the blood-pressure measurements in crisis range (systolic above 180 "
                "and/or diastolic above 120 mmHg) and escalate if confirmed."
            )
        if _has_kind(brief.episodes.by_kind, "low_spo2"):
            out.append(
                "Check oximeter fit and placement for participants with sustained low SpO2 "
                "before escalating; persistent readings of 91% or less need clinical review."
            )
        if _has_kind(by_kind, "fever", "hypothermia", "low_temperature"):
            out.append("Correlate abnormal temperatures with symptoms and device placement.")
        if quality.rows_input and quality.rows_rejected / quality.rows_input > 0.05:
            out.append(
                "More than 5% of rows failed validation: check the device export and the "
                "rejected-rows file before relying on trends."
            )
        if not out:
            out.append(
                "No high-severity finding: review the listed findings at the next scheduled check."
            )
        return out[:MAX_ITEMS]

    @staticmethod
    def _summary(brief: Brief) -> str:
        quality = brief.data_quality
        if not _assessable(brief):
            return (
                f"Overall risk is {NOT_ASSESSABLE}. {quality.rows_rejected:,} of "
                f"{plural(quality.rows_input, 'row')} failed validation, so no vital "
                "sign could be assessed."
            )
        level = risk_level(brief)
        high = int(brief.anomalies.by_severity.get("high", 0))
        people = brief.high_severity.items
        named = ""
        if people:
            refs = ", ".join(p.participant for p in people[:HIGH_SENTENCES])
            more = len(people) - HIGH_SENTENCES
            named = f" (review first: {refs}{f' and {more} more' if more > 0 else ''})"
        counts = (
            f"{plural(brief.participants, 'participant')} "
            f"contributed {plural(brief.readings, 'valid reading')}; "
            f"{brief.participants_flagged:,} had findings, with "
            f"{plural(high, 'high-severity finding')}{named} and "
            f"{plural(brief.episodes.total, 'sustained episode')}."
        )
        trends = _trend_summary(brief)
        if not trends:
            return f"{_risk_sentence(brief, level)} {counts}"
        if level in ("low", "moderate"):
            # the trends first: a low level must not read as "all clear" while they need review
            return f"{trends} {_risk_sentence(brief, level, ' alone')} {counts}"
        return f"{_risk_sentence(brief, level)} {counts} {trends}"


def _risk_sentence(brief: Brief, level: str, qualifier: str = "") -> str:
    """The level with what it is computed from: this file's readings' findings."""
    return f"Risk from this file's readings{qualifier} is {level} ({risk_criterion(brief, level)})."


def _trend_summary(brief: Brief) -> str:
    """The flagged trends across uploads and the call to review them ("" without any)."""
    if not brief.trends:
        return ""
    people = ", ".join(dict.fromkeys(t.participant for t in brief.trends))
    n = len(brief.trends)
    return (
        f"{plural(n, 'trend')} crossed a threshold compared with the last "
        f"{brief.trends_window_days} days ({people}): review {'it' if n == 1 else 'them'}."
    )


def _trend_insights(brief: Brief, most: int = 3) -> list[str]:
    """One sentence per flagged trend across uploads (the first `most`), with its criterion."""
    out = [trend_sentence(t) for t in brief.trends[:most]]
    if len(brief.trends) > most:
        out.append(f"{plural(len(brief.trends), 'trend')} were flagged in all.")
    return out


def _high_insights(brief: Brief) -> list[str]:
    """One sentence per participant with a high-severity finding, worst first."""
    high = brief.high_severity
    out = [
        f"High-severity finding, review first: {p.sentence}." for p in high.items[:HIGH_SENTENCES]
    ]
    more = high.participants - len(out)
    if more > 0:
        out.append(
            f"{plural(more, 'more participant')} had high-severity findings; all are named in "
            "the review list and the participant table."
        )
    return out


def _news2_insight(brief: Brief) -> str:
    news2 = brief.news2_partial
    red = brief.red_scores
    readings = red.readings
    text = (
        f"{plural(readings, 'reading')} had a NEWS2 red score (one parameter scoring 3, an "
        "urgent-review trigger on its own)"
    )
    parts = [
        f"{VITAL_WORDS.get(m, (m, ''))[0]} {int(n):,}" for m, n in red.by_metric.items() if int(n)
    ]
    if parts:
        text += ": " + ", ".join(parts)
    return (
        text + f"; {news2.readings_score_5_or_more:,} had a partial NEWS2 score of 5 or "
        f"more and {news2.readings_score_7_or_more:,} of 7 or more; respiration rate "
        "and consciousness are not in the data."
    )


def _episode_insights(brief: Brief) -> list[str]:
    episodes = brief.episodes
    total = episodes.total
    if not total:
        return []
    text = (
        f"{plural(total, 'sustained episode')} (3 or more consecutive abnormal readings of one "
        f"vital) {'was' if total == 1 else 'were'} found"
    )
    longest = episodes.longest
    if longest:
        who = f" in {longest.participant}" if longest.participant else ""
        scope = "the longest" if longest.whole_file else "the longest of the most severe"
        text += (
            f"; {scope} was {_label(longest.kind)}{who} over {plural(longest.readings, 'reading')}"
        )
    return [text + "."]


def _missing_vitals(brief: Brief) -> list[str]:
    """A vital without any reading is not assessable (its absence is not a normal result)."""
    missing = brief.assessment.vitals_not_assessable
    names = [VITAL_WORDS.get(m, (m, ""))[0] for m in missing]
    if not names:
        return []
    return [f"{', '.join(names)}: {NOT_ASSESSABLE} for this vital in this file."]


def _quality_insights(brief: Brief) -> list[str]:
    quality = brief.data_quality
    if not quality.rows_rejected:
        return []
    reason, n = next(iter(quality.reject_reasons.items()), ("", 0))
    return [
        f"{quality.rows_rejected:,} of {plural(quality.rows_input, 'row')} "
        f"({brief.shares_pct.rows_rejected}%) failed validation; "
        f"the most common reason was {reason} ({plural(int(n), 'row')})."
    ]


def _not_assessable_insights(brief: Brief) -> list[str]:
    return [
        "Not assessable: no valid readings. No vital sign could be scored, so no risk level "
        "applies to this file.",
        *_quality_insights(brief),
    ]

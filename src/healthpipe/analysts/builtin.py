"""The builtin analyst: deterministic insights written from the computed facts.

It is the offline default and the fallback of every LLM analyst. Every number it writes is
taken from the brief (counts, `shares_pct`, `reference` thresholds), so its text passes the
same grounding check as a model's; the check's record is kept with the report.
"""

from __future__ import annotations

from typing import Any

from healthpipe.analysts.grounding import check_grounding
from healthpipe.domain.insights import AnalystReport, InsightSet, RiskLevel
from healthpipe.ports import Analyst

KIND_LABELS = {
    "tachycardia": "tachycardia (heart rate above 90 bpm)",
    "bradycardia": "bradycardia (heart rate of 50 bpm or less)",
    "low_spo2": "low SpO2 (95% or less)",
    "hypotension": "low systolic pressure (110 mmHg or less)",
    "hypothermia": "low temperature (36.0 °C or less)",
    "fever": "raised temperature (above 38.0 °C)",
    "hypertension_stage_1": "stage 1 hypertension",
    "hypertension_stage_2": "stage 2 hypertension",
    "hypertensive_crisis": "hypertensive crisis (above 180/120 mmHg)",
    "baseline_deviation": "deviation from a participant's own baseline",
}


def _label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.replace("_", " "))


def risk_level(brief: dict[str, Any]) -> RiskLevel:
    severity = brief["anomalies"]["by_severity"]
    readings = max(int(brief["readings"]), 1)
    high = int(severity.get("high", 0))
    crisis_episodes = int(brief["episodes"]["by_kind"].get("hypertensive_crisis", 0))
    if crisis_episodes or high / readings >= 0.05:
        return "critical"
    if high:
        return "high"
    if severity.get("medium"):
        return "moderate"
    return "low"


class BuiltinAnalyst(Analyst):
    provider = "builtin"
    model = "healthpipe-rules-v1"

    def _analyze(self, brief: dict[str, Any]) -> AnalystReport:
        result = InsightSet(
            insights=self._insights(brief),
            recommendations=self._recommendations(brief),
            summary=self._summary(brief),
            risk_level=risk_level(brief),
        )
        grounding = check_grounding(result, brief)
        return AnalystReport(
            result=grounding.result or result,
            provider=self.provider,
            model=self.model,
            grounding=grounding.record(),
        )

    @staticmethod
    def _insights(brief: dict[str, Any]) -> list[str]:
        readings = int(brief["readings"])
        anomalies = brief["anomalies"]
        severity = anomalies["by_severity"]
        shares = brief["shares_pct"]
        out = [
            f"{anomalies['readings_flagged']} of {readings} valid readings "
            f"({shares['readings_flagged']}%) had at least one finding; "
            f"{severity.get('high', 0)} findings were high severity, "
            f"{severity.get('medium', 0)} medium and {severity.get('low', 0)} low."
        ]
        by_kind = anomalies["by_kind"]
        if by_kind:
            kind, count = next(iter(by_kind.items()))
            out.append(f"The most frequent finding was {_label(kind)}: {count} findings.")
        news2 = brief["news2_partial"]
        out.append(
            f"{news2['readings_score_5_or_more']} readings had a partial NEWS2 score of 5 or "
            f"more (the urgent-review threshold) and {news2['readings_score_7_or_more']} of 7 "
            "or more; respiration rate and consciousness are not in the data."
        )
        bp = brief["bp_categories"]
        stage_2, crisis = bp.get("hypertension_stage_2", 0), bp.get("hypertensive_crisis", 0)
        if stage_2 or crisis:
            out.append(
                f"{stage_2} readings were in ACC/AHA stage 2 hypertension and {crisis} in "
                f"hypertensive crisis ({shares['bp_stage_2_or_crisis']}% of readings together)."
            )
        episodes = brief["episodes"]
        if episodes["total"]:
            longest = max(episodes["top"], key=lambda e: e["readings"], default=None)
            text = (
                f"{episodes['total']} sustained episodes (3 or more consecutive abnormal "
                f"readings of one vital) were found"
            )
            if longest:
                text += (
                    f"; the longest was {_label(longest['kind'])} in {longest['participant']} "
                    f"over {longest['readings']} readings"
                )
            out.append(text + ".")
        quality = brief["data_quality"]
        if quality["rows_rejected"]:
            reason, count = next(iter(quality["reject_reasons"].items()), ("", 0))
            out.append(
                f"{quality['rows_rejected']} of {quality['rows_input']} rows "
                f"({shares['rows_rejected']}%) failed validation; "
                f"the most common reason was {reason} ({count} rows)."
            )
        return out

    @staticmethod
    def _recommendations(brief: dict[str, Any]) -> list[str]:
        out: list[str] = []
        high_risk = [
            p["participant"] for p in brief["participants_at_risk"] if p["worst"] == "high"
        ]
        if high_risk:
            out.append(
                "Review first the participants with high-severity findings, in order of risk: "
                + ", ".join(high_risk[:5])
                + "."
            )
        by_kind = brief["anomalies"]["by_kind"]
        if by_kind.get("hypertensive_crisis"):
            out.append(
                "Repeat the blood-pressure measurements in crisis range (above 180/120 mmHg) "
                "and escalate if confirmed."
            )
        if brief["episodes"]["by_kind"].get("low_spo2"):
            out.append(
                "Check oximeter fit and placement for participants with sustained low SpO2 "
                "before escalating; persistent readings of 91% or less need clinical review."
            )
        if by_kind.get("fever") or by_kind.get("hypothermia"):
            out.append("Correlate abnormal temperatures with symptoms and device placement.")
        quality = brief["data_quality"]
        if quality["rows_input"] and quality["rows_rejected"] / quality["rows_input"] > 0.05:
            out.append(
                "More than 5% of rows failed validation: check the device export and the "
                "rejected-rows file before relying on trends."
            )
        if not out:
            out.append("No urgent action is indicated; continue routine monitoring.")
        return out

    @staticmethod
    def _summary(brief: dict[str, Any]) -> str:
        level = risk_level(brief)
        anomalies = brief["anomalies"]
        return (
            f"Overall risk is {level}. {brief['participants']} participants contributed "
            f"{brief['readings']} valid readings; {brief['participants_flagged']} had findings, "
            f"with {anomalies['by_severity'].get('high', 0)} high-severity findings and "
            f"{brief['episodes']['total']} sustained episodes."
        )

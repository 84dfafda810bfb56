"""Builds the report's view model from a stored analysis: pseudonymised, bounded, plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from healthpipe.domain.identity import pseudonym

METRIC_LABELS = {
    "heart_rate": ("Heart rate", "bpm"),
    "spo2": ("SpO2", "%"),
    "steps": ("Steps", ""),
    "temp_c": ("Temperature", "°C"),
    "systolic_bp": ("Systolic BP", "mmHg"),
    "diastolic_bp": ("Diastolic BP", "mmHg"),
    "blood_pressure": ("Blood pressure", "mmHg"),
}
SEVERITIES = ("high", "medium", "low")


@dataclass
class ReportModel:
    dataset_id: str
    title: str
    subject: str
    generated_at: str
    source_key: str
    worst_severity: str
    risk_level: str
    quality: dict[str, Any]
    anomalies: dict[str, Any]
    episodes: list[dict[str, Any]]
    episodes_total: int
    users: list[dict[str, Any]]
    users_total: int
    metrics: list[dict[str, Any]]
    insights: list[str]
    recommendations: list[str]
    summary: str
    analyst: dict[str, Any]
    disclaimer: str
    news2: dict[str, Any]
    bp_categories: dict[str, int]
    charts: list[dict[str, str]] = field(default_factory=list)

    def as_context(self) -> dict[str, Any]:
        return dict(self.__dict__)


def metric_label(metric: str) -> str:
    name, unit = METRIC_LABELS.get(metric, (metric, ""))
    return f"{name} ({unit})" if unit else name


def _who(user_id: str, secret: str, reveal: bool) -> str:
    return user_id if reveal else pseudonym(user_id, secret)


def build_report_model(
    analysis: dict[str, Any],
    *,
    secret: str,
    reveal_ids: bool = False,
    top_users: int = 10,
    top_episodes: int = 15,
) -> ReportModel:
    quality = analysis["data_quality"]
    rows_input = int(quality["rows_input"]) or 0
    valid_pct = 100.0 * int(quality["rows_valid"]) / rows_input if rows_input else 0.0
    worst = analysis.get("worst_severity", "none")
    day = str(analysis.get("created_at", ""))[:10]
    subject = (
        f"healthpipe report {day} · dataset {analysis['dataset_id']} · worst severity: {worst}"
    )
    episodes = [
        {
            "who": _who(str(e["user_id"]), secret, reveal_ids),
            "metric": metric_label(str(e["metric"])),
            "kind": str(e["kind"]).replace("_", " "),
            "severity": e["severity"],
            "readings": e["readings"],
            "minutes": round(float(e.get("duration_s") or 0) / 60, 1),
            "peak": e["peak_value"],
        }
        for e in analysis["episodes"]["list"][:top_episodes]
    ]
    users = [
        {
            "who": _who(str(u["user_id"]), secret, reveal_ids),
            **{
                k: u[k]
                for k in (
                    "readings",
                    "anomalies",
                    "high",
                    "medium",
                    "low",
                    "episodes",
                    "worst",
                    "risk_score",
                )
            },
        }
        for u in analysis["users"]["top"][:top_users]
    ]
    metrics = [
        {
            "name": metric_label(m),
            **{k: s.get(k) for k in ("count", "mean", "min", "median", "p95", "max")},
        }
        for m, s in analysis["metrics"].items()
    ]
    return ReportModel(
        dataset_id=analysis["dataset_id"],
        title=f"Vitals report · {analysis['source']['key'].rsplit('/', 1)[-1]}",
        subject=subject,
        generated_at=str(analysis.get("created_at", "")),
        source_key=analysis["source"]["key"],
        worst_severity=worst,
        risk_level=analysis.get("risk_level", "low"),
        quality={
            "rows_input": rows_input,
            "rows_valid": quality["rows_valid"],
            "rows_rejected": quality["rows_rejected"],
            "valid_pct": round(valid_pct, 1),
            "reasons": list(quality["reasons"].items())[:5],
            "rejected_key": quality.get("rejected_key"),
            "profile": quality.get("rules_profile"),
        },
        anomalies={
            "total": analysis["anomalies"]["total"],
            "readings_flagged": analysis["anomalies"]["readings_flagged"],
            "by_severity": [
                (s, analysis["anomalies"]["by_severity"].get(s, 0)) for s in SEVERITIES
            ],
            "by_kind": [
                (k.replace("_", " "), n) for k, n in analysis["anomalies"]["by_kind"].items()
            ],
        },
        episodes=episodes,
        episodes_total=analysis["episodes"]["total"],
        users=users,
        users_total=analysis["users"]["total"],
        metrics=metrics,
        insights=list(analysis.get("insights", [])),
        recommendations=list(analysis.get("recommendations", [])),
        summary=str(analysis.get("summary", "")),
        analyst=dict(analysis.get("analyst", {})),
        disclaimer=str(analysis.get("disclaimer", "")),
        news2=analysis.get("news2_partial", {}),
        bp_categories=analysis.get("bp_categories", {}),
    )

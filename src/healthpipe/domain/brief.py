"""The analyst's brief: de-identified aggregates only.

No raw rows, no user ids, no timestamps of individuals: participants appear as P01, P02, …
in order of risk, and the brief stays the same size whatever the file size.
"""

from __future__ import annotations

from typing import Any

BRIEF_TOP_USERS = 10
BRIEF_TOP_EPISODES = 10
STAT_KEYS = ("count", "mean", "std", "min", "p05", "median", "p95", "max")


def participant_labels(user_ids: list[str]) -> dict[str, str]:
    width = max(2, len(str(len(user_ids))))
    return {uid: f"P{i:0{width}d}" for i, uid in enumerate(user_ids, start=1)}


def build_brief(facts: dict[str, Any], quality: dict[str, Any]) -> dict[str, Any]:
    """Reduce the analysis facts to what an analyst may see."""
    top_users = facts["users"]["top"][:BRIEF_TOP_USERS]
    labels = participant_labels([str(u["user_id"]) for u in top_users])
    episodes = [e for e in facts["episodes"]["list"] if str(e["user_id"]) in labels]
    return {
        "data_quality": {
            "rows_input": quality.get("rows_input", 0),
            "rows_valid": quality.get("rows_valid", 0),
            "rows_rejected": quality.get("rows_rejected", 0),
            "reject_reasons": dict(list(quality.get("reasons", {}).items())[:8]),
            "rules_profile": quality.get("rules_profile"),
        },
        "readings": facts["readings"],
        "participants": facts["users"]["total"],
        "participants_flagged": facts["users"]["flagged"],
        "metrics": {
            metric: {k: stats.get(k) for k in STAT_KEYS}
            for metric, stats in facts["metrics"].items()
        },
        "news2_partial": facts["news2_partial"],
        "bp_categories": facts["bp_categories"],
        "anomalies": {
            key: facts["anomalies"][key]
            for key in ("total", "readings_flagged", "by_severity", "by_kind", "by_metric")
        },
        "episodes": {
            "total": facts["episodes"]["total"],
            "by_kind": facts["episodes"]["by_kind"],
            "top": [
                {
                    "participant": labels[str(e["user_id"])],
                    "metric": e["metric"],
                    "kind": e["kind"],
                    "severity": e["severity"],
                    "readings": e["readings"],
                    "duration_minutes": round(float(e.get("duration_s") or 0) / 60, 1),
                    "peak_value": e["peak_value"],
                }
                for e in episodes[:BRIEF_TOP_EPISODES]
            ],
        },
        "participants_at_risk": [
            {
                "participant": labels[str(u["user_id"])],
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
            for u in top_users
        ],
    }

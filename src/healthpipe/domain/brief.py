"""The analyst's brief: de-identified aggregates only.

No raw rows, no user ids, no timestamps of individuals: participants appear as P01, P02, …
in order of risk, and the brief stays the same size whatever the file size. Besides the
counts it carries the shares an analyst is likely to quote (`shares_pct`) and the clinical
thresholds the findings are based on (`reference`), so that every number a grounded text
needs is in the brief itself.
"""

from __future__ import annotations

import math
from typing import Any

from healthpipe.domain import clinical
from healthpipe.domain.episodes import MIN_EPISODE_READINGS

BRIEF_TOP_USERS = 10
BRIEF_TOP_EPISODES = 10
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
        "episode_min_consecutive_readings": MIN_EPISODE_READINGS,
        "reject_rate_warning_pct": REJECT_RATE_WARNING_PCT,
    }


def _shares(facts: dict[str, Any], quality: dict[str, Any]) -> dict[str, Any]:
    readings = int(facts["readings"])
    bp = facts["bp_categories"]
    news2 = facts["news2_partial"]
    severe_bp = int(bp.get("hypertension_stage_2", 0)) + int(bp.get("hypertensive_crisis", 0))
    return {
        "readings_flagged": pct(facts["anomalies"]["readings_flagged"], readings),
        "rows_rejected": pct(quality.get("rows_rejected", 0), quality.get("rows_input", 0)),
        "participants_flagged": pct(facts["users"]["flagged"], facts["users"]["total"]),
        "news2_score_5_or_more": pct(news2["readings_score_5_or_more"], readings),
        "news2_score_7_or_more": pct(news2["readings_score_7_or_more"], readings),
        "bp_stage_2_or_crisis": pct(severe_bp, readings),
        "bp_categories": {name: pct(int(n), readings) for name, n in bp.items()},
    }


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
            "rules_profile": _profile_name(quality.get("rules_profile")),
        },
        "readings": facts["readings"],
        "participants": facts["users"]["total"],
        "participants_flagged": facts["users"]["flagged"],
        "shares_pct": _shares(facts, quality),
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
            {"participant": labels[str(u["user_id"])], **{k: u[k] for k in USER_KEYS}}
            for u in top_users
        ],
        "reference": reference_thresholds(),
    }

"""Words a clinician reads: vital names with units, finding types with their rule, reasons."""

from __future__ import annotations

from healthpipe.domain import clinical

METRIC_LABELS = {
    "heart_rate": ("Heart rate", "bpm"),
    "spo2": ("SpO2", "%"),
    "steps": ("Activity (steps)", "per reading"),
    "temp_c": ("Temperature", "°C"),
    "systolic_bp": ("Systolic BP", "mmHg"),
    "diastolic_bp": ("Diastolic BP", "mmHg"),
    "blood_pressure": ("Blood pressure", "mmHg"),
}


NEWS2, ACC_AHA, BASELINE = clinical.NEWS2, clinical.ACC_AHA, clinical.BASELINE


def _kind_info() -> dict[str, tuple[str, str, str]]:
    """kind -> (label, reference, criterion), from the single source `clinical.KINDS`: every
    label states the criterion the code applies."""
    return {k: (i.label, i.reference, i.criterion) for k, i in clinical.KINDS.items()}


KIND_INFO = _kind_info()

SEVERITY_MEANING = {
    "high": "NEWS2 single-parameter score 3 (red score) or ACC/AHA hypertensive crisis",
    "medium": "NEWS2 score 2, ACC/AHA stage 2, or a strong baseline deviation (|z| > 5) "
    "outside the chart's normal band",
    "low": "NEWS2 score 1, ACC/AHA stage 1, a baseline deviation, or a heart-rate finding "
    "during activity",
}

SEVERITY_COLOURS = {"high": "#b03a2e", "medium": "#d35400", "low": "#9a7d0a", "none": "#1e8449"}

BP_CATEGORY_LABELS = {
    "normal": "Normal (< 120 / < 80)",
    "elevated": "Elevated (120–129 / < 80)",
    "hypertension_stage_1": "Stage 1 (130–139 or 80–89)",
    "hypertension_stage_2": "Stage 2 (≥ 140 or ≥ 90)",
    "hypertensive_crisis": "Crisis (above 180 and/or above 120)",
}

_REASONS = {
    "duplicate_reading": "Duplicate reading (same participant and time)",
    "dbp_ge_sbp": "Diastolic BP not below systolic",
    "dbp_gt_sbp": "Diastolic BP above systolic",
}
_FIELDS = {
    "event_time": "Event time",
    "user_id": "Participant id",
    **{k: name for k, (name, _) in METRIC_LABELS.items()},
}


def metric_label(metric: str) -> str:
    name, unit = METRIC_LABELS.get(metric, (metric.replace("_", " "), ""))
    return f"{name} ({unit})" if unit else name


def metric_unit(metric: str) -> str:
    unit = METRIC_LABELS.get(metric, ("", ""))[1]
    return "" if unit == "per reading" else unit


def kind_label(kind: str) -> str:
    return KIND_INFO.get(kind, (kind.replace("_", " ").capitalize(), "", ""))[0]


def kind_reference(kind: str) -> tuple[str, str]:
    _, reference, criterion = KIND_INFO.get(kind, ("", "", ""))
    return reference, criterion


def reason_label(code: str) -> str:
    """`invalid_temp_c` -> 'Temperature: implausible or unreadable'."""
    if code in _REASONS:
        return _REASONS[code]
    for prefix, text in (("missing_", "missing"), ("invalid_", "implausible or unreadable")):
        if code.startswith(prefix):
            field = code[len(prefix) :]
            return f"{_FIELDS.get(field, field.replace('_', ' '))}: {text}"
    return code.replace("_", " ")


def quality_grade(valid_pct: float) -> str:
    if valid_pct >= 99.0:
        return "good"
    if valid_pct >= 95.0:
        return "fair"
    return "poor"


def duration_text(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d} min"


def worst_word(kind: str) -> str:
    """'lowest' for kinds whose worst value is the lowest (low SpO2), else 'highest'."""
    return "lowest" if kind in clinical.LOW_SIDE_KINDS else "highest"

"""Clinical reference bands: partial NEWS2 (RCP 2017, chart 1) and ACC/AHA 2017 BP categories.

Pure data and functions. The analyze stage turns the same tables into SQL, so a unit test can
hold the Python scoring and the SQL scoring against each other at every band edge.

NEWS2 parameters used (respiration rate, consciousness and supplemental oxygen are not in the
data, so the aggregate here is a *partial* NEWS2):

    parameter       3        2         1           0            1           2        3
    heart rate     ≤40       –       41–50       51–90        91–110      111–130   ≥131
    SpO2 scale 1   ≤91     92–93     94–95        ≥96            –           –         –
    systolic BP    ≤90    91–100    101–110     111–219          –           –       ≥220
    temperature   ≤35.0      –     35.1–36.0   36.1–38.0    38.1–39.0     ≥39.1       –

Values are compared against each band's inclusive upper limit, so a reading between two
charted values (36.05 °C) falls in the band of the next higher limit (the 35.1–36.0 band
ends at 36.0; 36.05 scores 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum


class Severity(IntEnum):
    NONE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Severity:
        return cls[label.upper()]


@dataclass(frozen=True)
class Band:
    """Values up to and including `upper` score `score`; `kind` names the anomaly."""

    upper: float
    score: int
    kind: str | None


@dataclass(frozen=True)
class News2Parameter:
    metric: str
    bands: tuple[Band, ...]  # ascending `upper`, the last one is +inf

    def band_for(self, value: float) -> Band:
        for band in self.bands:
            if value <= band.upper:
                return band
        return self.bands[-1]


INF = math.inf

NEWS2_PARAMETERS: tuple[News2Parameter, ...] = (
    News2Parameter(
        "heart_rate",
        (
            Band(40, 3, "bradycardia"),
            Band(50, 1, "bradycardia"),
            Band(90, 0, None),
            Band(110, 1, "tachycardia"),
            Band(130, 2, "tachycardia"),
            Band(INF, 3, "tachycardia"),
        ),
    ),
    News2Parameter(
        "spo2",
        (
            Band(91, 3, "low_spo2"),
            Band(93, 2, "low_spo2"),
            Band(95, 1, "low_spo2"),
            Band(INF, 0, None),
        ),
    ),
    News2Parameter(
        "systolic_bp",
        (
            Band(90, 3, "hypotension"),
            Band(100, 2, "hypotension"),
            Band(110, 1, "hypotension"),
            Band(219, 0, None),
            Band(INF, 3, "severe_hypertension"),
        ),
    ),
    News2Parameter(
        "temp_c",
        (
            Band(35.0, 3, "hypothermia"),
            Band(36.0, 1, "hypothermia"),
            Band(38.0, 0, None),
            Band(39.0, 1, "fever"),
            Band(INF, 2, "fever"),
        ),
    ),
)

NEWS2_BY_METRIC = {p.metric: p for p in NEWS2_PARAMETERS}

# NEWS2 kinds the BP categories already report (a crisis-level reading is flagged once).
NEWS2_KINDS_COVERED_BY_BP = frozenset({"severe_hypertension"})


def _low_side_kinds() -> frozenset[str]:
    """Kinds flagged below a parameter's zero-score band (their worst value is the lowest)."""
    kinds: set[str] = set()
    for param in NEWS2_PARAMETERS:
        for band in param.bands:
            if band.score == 0:
                break
            if band.kind:
                kinds.add(band.kind)
    return frozenset(kinds)


# bradycardia, low_spo2, hypotension, hypothermia: an episode's peak is its lowest value
LOW_SIDE_KINDS = _low_side_kinds()


def news2_score(metric: str, value: float) -> int:
    return NEWS2_BY_METRIC[metric].band_for(value).score


def severity_for_news2_score(score: int) -> Severity:
    """A single-parameter score of 3 is a NEWS2 'red score' (urgent review)."""
    return Severity(min(max(score, 0), 3))


def partial_news2(heart_rate: float, spo2: float, systolic_bp: float, temp_c: float) -> int:
    return (
        news2_score("heart_rate", heart_rate)
        + news2_score("spo2", spo2)
        + news2_score("systolic_bp", systolic_bp)
        + news2_score("temp_c", temp_c)
    )


# ACC/AHA 2017: the higher of the systolic and diastolic categories applies.
@dataclass(frozen=True)
class BpCategory:
    name: str
    severity: Severity


BP_NORMAL = BpCategory("normal", Severity.NONE)
BP_ELEVATED = BpCategory("elevated", Severity.NONE)
BP_STAGE_1 = BpCategory("hypertension_stage_1", Severity.LOW)
BP_STAGE_2 = BpCategory("hypertension_stage_2", Severity.MEDIUM)
BP_CRISIS = BpCategory("hypertensive_crisis", Severity.HIGH)
BP_CATEGORIES = (BP_NORMAL, BP_ELEVATED, BP_STAGE_1, BP_STAGE_2, BP_CRISIS)

# Thresholds (mmHg), kept as data so the SQL uses the same numbers.
CRISIS_SYSTOLIC_ABOVE = 180
CRISIS_DIASTOLIC_ABOVE = 120
STAGE_2_SYSTOLIC_FROM = 140
STAGE_2_DIASTOLIC_FROM = 90
STAGE_1_SYSTOLIC_FROM = 130
STAGE_1_DIASTOLIC_FROM = 80
ELEVATED_SYSTOLIC_FROM = 120


def bp_category(systolic: float, diastolic: float) -> BpCategory:
    if systolic > CRISIS_SYSTOLIC_ABOVE or diastolic > CRISIS_DIASTOLIC_ABOVE:
        return BP_CRISIS
    if systolic >= STAGE_2_SYSTOLIC_FROM or diastolic >= STAGE_2_DIASTOLIC_FROM:
        return BP_STAGE_2
    if systolic >= STAGE_1_SYSTOLIC_FROM or diastolic >= STAGE_1_DIASTOLIC_FROM:
        return BP_STAGE_1
    if systolic >= ELEVATED_SYSTOLIC_FROM:
        return BP_ELEVATED
    return BP_NORMAL

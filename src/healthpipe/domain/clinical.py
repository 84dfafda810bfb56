"""Clinical reference bands: partial NEWS2 (RCP 2017, chart 1) and ACC/AHA 2017 BP categories.

Pure data and functions. The analyze stage turns the same tables into SQL
(`domain/anomaly_sql.py`), so tests hold the Python scoring (this module: the "Python twin")
and the SQL scoring against each other and against the published charts.

NEWS2 parameters used (respiration rate, consciousness and supplemental oxygen are not in the
data, so the aggregate here is a *partial* NEWS2):

    parameter       3        2         1           0            1           2        3
    heart rate     ≤40       –       41–50       51–90        91–110      111–130   ≥131
    SpO2 scale 1   ≤91     92–93     94–95        ≥96            –           –         –
    systolic BP    ≤90    91–100    101–110     111–219          –           –       ≥220
    temperature   ≤35.0      –     35.1–36.0   36.1–38.0    38.1–39.0     ≥39.1       –

**Chart resolution.** The chart is written in whole units (0.1 °C for temperature); a reading
is first rounded, half-up, to the chart's resolution (`chart_value`: heart rate, SpO2 and
blood pressure to whole numbers, temperature to 0.1 °C) and then looked up, so 40.4 bpm is
40 (score 3), 90.4 bpm is 90 (score 0), 35.04 °C is 35.0 (score 3) and 35.05 °C is 35.1
(score 1). Half-up is computed as floor(v · scale + 0.5 + ROUNDING_EPSILON) / scale, the same
arithmetic in Python and SQL (neither Python's banker's `round` nor DuckDB's `round` on a
DOUBLE), with a tiny epsilon so that a decimal written as 35.05 (stored as 35.04999…) rounds up.

**Kinds.** Every scoring band has its own kind (`KINDS`), named by what the chart says and
with the criterion the code applies ("low temperature (NEWS2 1)": 35.1–36.0 °C; "hypothermia"
only at ≤ 35.0 °C). `KINDS` is the single source of kind labels and criteria: the report's
labels read it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal


class Severity(IntEnum):
    NONE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        return self.name.lower()


# The one severity order: labels mildest first ("none", "low", "medium", "high"), each
# label's rank, and the severities a finding can have, worst first (as reports list them).
SEVERITY_LABELS: tuple[str, ...] = tuple(s.label for s in Severity)
SEVERITY_RANK: dict[str, int] = {s.label: int(s) for s in Severity}
FINDING_SEVERITIES: tuple[str, ...] = tuple(s.label for s in reversed(Severity) if s)


def severity_label(value: int) -> str:
    """The label of a severity stored as its number (0 "none" … 3 "high")."""
    return Severity(value).label


def worst_severity(by_severity: Mapping[str, int]) -> str:
    """The worst severity label with a count above 0 ("none" when there is none)."""
    present = [s for s in SEVERITY_LABELS if by_severity.get(s)]
    return present[-1] if present else Severity.NONE.label


# --- chart resolution ----------------------------------------------------------------------

# The chart's resolution, as a scale: a value is rounded to 1/scale (1: whole numbers).
CHART_SCALE: dict[str, int] = {
    "heart_rate": 1,
    "spo2": 1,
    "systolic_bp": 1,
    "diastolic_bp": 1,
    "temp_c": 10,
}
# The measuring resolution of each vital (one step of the chart), used as the floor of a
# personal baseline's spread (`domain/baseline.py`).
RESOLUTION: dict[str, float] = {m: 1.0 / s for m, s in CHART_SCALE.items()}
# Added before the floor so that a decimal written as x.x5 but stored a hair below rounds up;
# far below any real measuring resolution (values are at most a few hundred).
ROUNDING_EPSILON = 1e-9


def chart_value(metric: str, value: float) -> float:
    """`value` rounded half-up to the chart's resolution for `metric` (NaN/inf unchanged)."""
    if not math.isfinite(value):
        return value
    scale = CHART_SCALE[metric]
    return math.floor(value * scale + 0.5 + ROUNDING_EPSILON) / scale


# --- kinds ----------------------------------------------------------------------------------

NEWS2 = "NEWS2"
ACC_AHA = "ACC/AHA 2017"
BASELINE = "Personal baseline"
Direction = Literal["low", "high"]


@dataclass(frozen=True)
class KindInfo:
    """What a kind of finding means: `label` (as a clinician reads it, with the chart score),
    `reference` (the chart), `criterion` (exactly what the code applies, after rounding to
    the chart's resolution), the vital and the `direction` (low: its worst value is the
    lowest; high: the highest)."""

    label: str
    reference: str
    criterion: str
    metric: str
    direction: Direction


KINDS: dict[str, KindInfo] = {
    # heart rate
    "bradycardia_news2_3": KindInfo(
        "Bradycardia (NEWS2 3)", NEWS2, "heart rate ≤ 40 bpm", "heart_rate", "low"
    ),
    "low_heart_rate_news2_1": KindInfo(
        "Low heart rate (NEWS2 1)", NEWS2, "heart rate 41–50 bpm", "heart_rate", "low"
    ),
    "raised_heart_rate_news2_1": KindInfo(
        "Raised heart rate (NEWS2 1)", NEWS2, "heart rate 91–110 bpm", "heart_rate", "high"
    ),
    "tachycardia_news2_2": KindInfo(
        "Tachycardia (NEWS2 2)", NEWS2, "heart rate 111–130 bpm", "heart_rate", "high"
    ),
    "tachycardia_news2_3": KindInfo(
        "Tachycardia (NEWS2 3)", NEWS2, "heart rate ≥ 131 bpm", "heart_rate", "high"
    ),
    # SpO2 (scale 1)
    "low_spo2_news2_3": KindInfo("Low SpO2 (NEWS2 3)", NEWS2, "SpO2 ≤ 91 %", "spo2", "low"),
    "low_spo2_news2_2": KindInfo("Low SpO2 (NEWS2 2)", NEWS2, "SpO2 92–93 %", "spo2", "low"),
    "low_spo2_news2_1": KindInfo("Low SpO2 (NEWS2 1)", NEWS2, "SpO2 94–95 %", "spo2", "low"),
    # systolic blood pressure
    "low_systolic_bp_news2_3": KindInfo(
        "Low systolic BP (NEWS2 3)", NEWS2, "systolic ≤ 90 mmHg", "systolic_bp", "low"
    ),
    "low_systolic_bp_news2_2": KindInfo(
        "Low systolic BP (NEWS2 2)", NEWS2, "systolic 91–100 mmHg", "systolic_bp", "low"
    ),
    "low_systolic_bp_news2_1": KindInfo(
        "Low systolic BP (NEWS2 1)", NEWS2, "systolic 101–110 mmHg", "systolic_bp", "low"
    ),
    "high_systolic_bp_news2_3": KindInfo(
        "High systolic BP (NEWS2 3)", NEWS2, "systolic ≥ 220 mmHg", "systolic_bp", "high"
    ),
    # temperature
    "hypothermia_news2_3": KindInfo(
        "Hypothermia (NEWS2 3)", NEWS2, "temperature ≤ 35.0 °C", "temp_c", "low"
    ),
    "low_temperature_news2_1": KindInfo(
        "Low temperature (NEWS2 1)", NEWS2, "temperature 35.1–36.0 °C", "temp_c", "low"
    ),
    "fever_news2_1": KindInfo(
        "Fever (NEWS2 1)", NEWS2, "temperature 38.1–39.0 °C", "temp_c", "high"
    ),
    "fever_news2_2": KindInfo("Fever (NEWS2 2)", NEWS2, "temperature ≥ 39.1 °C", "temp_c", "high"),
    # ACC/AHA 2017 blood-pressure categories (wording as in the guideline's table)
    "hypertension_stage_1": KindInfo(
        "Hypertension stage 1",
        ACC_AHA,
        "systolic 130–139 or diastolic 80–89 mmHg",
        "blood_pressure",
        "high",
    ),
    "hypertension_stage_2": KindInfo(
        "Hypertension stage 2",
        ACC_AHA,
        "systolic ≥ 140 or diastolic ≥ 90 mmHg",
        "blood_pressure",
        "high",
    ),
    "hypertensive_crisis": KindInfo(
        "Hypertensive crisis",
        ACC_AHA,
        "systolic above 180 and/or diastolic above 120 mmHg",
        "blood_pressure",
        "high",
    ),
    # personal baselines (`domain/baseline.py`); the direction is the deviation's sign
    "baseline_deviation": KindInfo(
        "Deviation from own baseline",
        BASELINE,
        "|modified z| > 3.5 (median and MAD, or mean absolute deviation when MAD is 0; "
        "spread at least one measuring step)",
        "",
        "high",
    ),
}


# --- NEWS2 ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """Chart values up to and including `upper` score `score`; `kind` names the finding."""

    upper: float
    score: int
    kind: str | None


@dataclass(frozen=True)
class News2Parameter:
    metric: str
    bands: tuple[Band, ...]  # ascending `upper`, the last one is +inf

    def band_for(self, value: float) -> Band:
        """The band of `value` once rounded to the chart's resolution."""
        charted = chart_value(self.metric, value)
        for band in self.bands:
            if charted <= band.upper:
                return band
        return self.bands[-1]


INF = math.inf

NEWS2_PARAMETERS: tuple[News2Parameter, ...] = (
    News2Parameter(
        "heart_rate",
        (
            Band(40, 3, "bradycardia_news2_3"),
            Band(50, 1, "low_heart_rate_news2_1"),
            Band(90, 0, None),
            Band(110, 1, "raised_heart_rate_news2_1"),
            Band(130, 2, "tachycardia_news2_2"),
            Band(INF, 3, "tachycardia_news2_3"),
        ),
    ),
    News2Parameter(
        "spo2",
        (
            Band(91, 3, "low_spo2_news2_3"),
            Band(93, 2, "low_spo2_news2_2"),
            Band(95, 1, "low_spo2_news2_1"),
            Band(INF, 0, None),
        ),
    ),
    News2Parameter(
        "systolic_bp",
        (
            Band(90, 3, "low_systolic_bp_news2_3"),
            Band(100, 2, "low_systolic_bp_news2_2"),
            Band(110, 1, "low_systolic_bp_news2_1"),
            Band(219, 0, None),
            Band(INF, 3, "high_systolic_bp_news2_3"),
        ),
    ),
    News2Parameter(
        "temp_c",
        (
            Band(35.0, 3, "hypothermia_news2_3"),
            Band(36.0, 1, "low_temperature_news2_1"),
            Band(38.0, 0, None),
            Band(39.0, 1, "fever_news2_1"),
            Band(INF, 2, "fever_news2_2"),
        ),
    ),
)

NEWS2_BY_METRIC = {p.metric: p for p in NEWS2_PARAMETERS}

# NEWS2 kinds the BP categories already report (systolic ≥ 220 is also a hypertensive
# crisis: a reading is flagged once, as the crisis).
NEWS2_KINDS_COVERED_BY_BP = frozenset({"high_systolic_bp_news2_3"})

# Kinds whose worst value is the lowest (an episode of them states its "lowest" value).
LOW_SIDE_KINDS = frozenset(k for k, info in KINDS.items() if info.direction == "low")


def news2_score(metric: str, value: float) -> int:
    return NEWS2_BY_METRIC[metric].band_for(value).score


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

# Thresholds (mmHg, on whole-number chart values), kept as data so the SQL uses the same.
CRISIS_SYSTOLIC_ABOVE = 180
CRISIS_DIASTOLIC_ABOVE = 120
STAGE_2_SYSTOLIC_FROM = 140
STAGE_2_DIASTOLIC_FROM = 90
STAGE_1_SYSTOLIC_FROM = 130
STAGE_1_DIASTOLIC_FROM = 80
ELEVATED_SYSTOLIC_FROM = 120

# Which part of a pair puts a reading in its category.
BpTrigger = Literal["systolic", "diastolic", "both"]


def bp_category(systolic: float, diastolic: float) -> BpCategory:
    s = chart_value("systolic_bp", systolic)
    d = chart_value("diastolic_bp", diastolic)
    if s > CRISIS_SYSTOLIC_ABOVE or d > CRISIS_DIASTOLIC_ABOVE:
        return BP_CRISIS
    if s >= STAGE_2_SYSTOLIC_FROM or d >= STAGE_2_DIASTOLIC_FROM:
        return BP_STAGE_2
    if s >= STAGE_1_SYSTOLIC_FROM or d >= STAGE_1_DIASTOLIC_FROM:
        return BP_STAGE_1
    if s >= ELEVATED_SYSTOLIC_FROM:
        return BP_ELEVATED
    return BP_NORMAL


# category -> (systolic limit, diastolic limit, inclusive): a part triggers the category when
# its chart value reaches the limit (is above it when not inclusive).
BP_TRIGGER_LIMITS: dict[str, tuple[int, int, bool]] = {
    BP_CRISIS.name: (CRISIS_SYSTOLIC_ABOVE, CRISIS_DIASTOLIC_ABOVE, False),
    BP_STAGE_2.name: (STAGE_2_SYSTOLIC_FROM, STAGE_2_DIASTOLIC_FROM, True),
    BP_STAGE_1.name: (STAGE_1_SYSTOLIC_FROM, STAGE_1_DIASTOLIC_FROM, True),
}


def bp_trigger(systolic: float, diastolic: float) -> BpTrigger | None:
    """Which part of the pair reaches the pair's category (stage 1 and above), None below."""
    category = bp_category(systolic, diastolic)
    if category.name not in BP_TRIGGER_LIMITS:
        return None
    s_limit, d_limit, inclusive = BP_TRIGGER_LIMITS[category.name]
    s = chart_value("systolic_bp", systolic)
    d = chart_value("diastolic_bp", diastolic)
    by_s = s >= s_limit if inclusive else s > s_limit
    by_d = d >= d_limit if inclusive else d > d_limit
    return "both" if by_s and by_d else "systolic" if by_s else "diastolic"


# --- normal bands (for capping baseline-only findings) ------------------------------------


def normal_range(metric: str) -> tuple[float, float]:
    """The lowest and highest chart values of `metric`'s normal band (±inf at an open end):
    NEWS2 score 0 for heart rate, SpO2, systolic BP and temperature; below ACC/AHA stage 1
    for diastolic BP, which NEWS2 does not score."""
    step = RESOLUTION[metric]
    if metric == "diastolic_bp":
        return -INF, STAGE_1_DIASTOLIC_FROM - step
    lower = -INF
    for band in NEWS2_BY_METRIC[metric].bands:
        if band.score == 0:
            scale = CHART_SCALE[metric]
            return round(lower * scale + 1) / scale if lower > -INF else lower, band.upper
        lower = band.upper
    raise ValueError(f"{metric} has no NEWS2 0 band")


def outside_normal_band(metric: str, value: float) -> bool:
    """Whether `value` (at chart resolution) is outside the chart's normal band of `metric`:
    a NEWS2 score above 0 (heart rate, SpO2, temperature, systolic BP), or an ACC/AHA
    stage 1 or higher criterion met by that part of the pressure (systolic ≥ 130,
    diastolic ≥ 80). Metrics without a chart (steps) are never outside."""
    if metric == "diastolic_bp":
        return chart_value(metric, value) >= STAGE_1_DIASTOLIC_FROM
    if metric not in NEWS2_BY_METRIC:
        return False
    if metric == "systolic_bp" and chart_value(metric, value) >= STAGE_1_SYSTOLIC_FROM:
        return True
    return news2_score(metric, value) > 0


# --- activity and episodes ------------------------------------------------------------------

# A reading is "during activity" when its steps, or the steps of the participant's reading
# just before it (if that one is at most ACTIVITY_PREVIOUS_WITHIN_SECONDS earlier), are
# above this many (about ten minutes of walking; the exercise case had 2,500).
# Heart-rate findings during activity are marked and at most low unless they reach NEWS2 3,
# and they do not make episodes. The default of the `activity_steps_above` setting.
ACTIVITY_STEPS_ABOVE = 1000
# How recent the reading before must be for its steps to count: heart rate is back near
# rest within minutes of stopping, so activity an hour ago explains nothing now.
ACTIVITY_PREVIOUS_WITHIN_SECONDS = 10 * 60
# An episode is broken where two consecutive readings of a run are more than this apart.
# The default of the `episode_gap_minutes` setting (120).
EPISODE_GAP_SECONDS = 2 * 3600

"""Per-user robust baselines: the modified z-score of Iglewicz and Hoaglin (1993).

    M = 0.6745 · (x − median) / MAD,   flagged when |M| > 3.5

Only users with at least MIN_READINGS readings get a baseline; a MAD of 0 (a constant
series) gives no baseline, since every deviation would be infinite.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from healthpipe.domain.clinical import Severity

CONSISTENCY = 0.6745
THRESHOLD = 3.5
STRONG_THRESHOLD = 5.0
MIN_READINGS = 8


def median_absolute_deviation(values: Sequence[float]) -> float:
    center = statistics.median(values)
    return statistics.median(abs(v - center) for v in values)


def modified_z(value: float, median: float, mad: float) -> float | None:
    if mad <= 0:
        return None
    return CONSISTENCY * (value - median) / mad


def modified_z_scores(values: Sequence[float]) -> list[float | None]:
    """One score per value, or Nones when there are too few readings or MAD is 0."""
    if len(values) < MIN_READINGS:
        return [None] * len(values)
    center = statistics.median(values)
    mad = median_absolute_deviation(values)
    return [modified_z(v, center, mad) for v in values]


def is_outlier(score: float | None) -> bool:
    return score is not None and abs(score) > THRESHOLD


def baseline_severity(score: float) -> Severity:
    """A personal deviation is a prompt to look, not a clinical alarm: low, or medium if strong."""
    return Severity.MEDIUM if abs(score) > STRONG_THRESHOLD else Severity.LOW

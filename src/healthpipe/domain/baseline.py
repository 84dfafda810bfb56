"""Per-user robust baselines: the modified z-score of Iglewicz and Hoaglin (1993).

    M = 0.6745 · (x − median) / MAD                  when MAD > 0
    M = (x − median) / (1.253314 · MeanAD)           when MAD = 0 (MeanAD: mean |x − median|)

flagged when |M| > 3.5. Only users with at least MIN_READINGS readings of a vital get a
baseline of it. The spread (MAD, or MeanAD) is at least one measuring step of the vital
(`clinical.RESOLUTION`: 1 bpm, 1 %, 0.1 °C, 1 mmHg), so a change of a few steps is never an
outlier: with MAD it takes more than 3.5 / 0.6745 ≈ 5.2 steps, with MeanAD more than
3.5 · 1.253314 ≈ 4.4 steps. A series whose values are all equal has no deviation to flag.

A baseline finding is a prompt to look, not a clinical alarm: low, or medium when strong
(|M| > 5) *and* the value is also outside the chart's normal band
(`clinical.outside_normal_band`); otherwise low.
"""

from __future__ import annotations

CONSISTENCY = 0.6745
MEANAD_CONSISTENCY = 1.253314
THRESHOLD = 3.5
STRONG_THRESHOLD = 5.0
MIN_READINGS = 8


def modified_z(
    value: float, median: float, mad: float, meanad: float = 0.0, resolution: float = 0.0
) -> float | None:
    """M of `value`; the spread (MAD, or MeanAD when MAD is 0) is floored at `resolution`.
    None when there is no spread at all (every value equal and no resolution given)."""
    if mad > 0:
        return CONSISTENCY * (value - median) / max(mad, resolution)
    spread = max(meanad, resolution)
    if spread <= 0:
        return None
    return (value - median) / (MEANAD_CONSISTENCY * spread)

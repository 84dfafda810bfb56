"""Episodes: runs of at least MIN_EPISODE_READINGS consecutive abnormal readings of one user
for one vital in one direction (low or high), broken where two consecutive readings are more
than a gap apart (`clinical.EPISODE_GAP_SECONDS`, 2 h). Grouping readings into episodes turns
a storm of alerts into a few events.

A user's readings are taken in time order; a reading that is normal, abnormal in the other
direction (heart rate 45, 95, 45 is no bradycardia episode), or not eligible (a heart-rate
finding during activity below NEWS2 3) breaks the run. An episode states its kind (that of
its most severe reading: a crisis reading inside a longer run of stage 1 or 2 readings makes
it a crisis episode), its worst value ("lowest" for low kinds, "highest" for high ones), its
span and its number of readings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from healthpipe.domain.clinical import EPISODE_GAP_SECONDS

MIN_EPISODE_READINGS = 3


@dataclass(frozen=True)
class Episode:
    start_index: int
    end_index: int  # inclusive

    @property
    def readings(self) -> int:
        return self.end_index - self.start_index + 1


def find_runs(
    readings: Sequence[tuple[str | None, float | None]],
    *,
    gap_seconds: float = EPISODE_GAP_SECONDS,
    minimum: int = MIN_EPISODE_READINGS,
) -> list[Episode]:
    """Episodes in one user's time-ordered readings of one vital, each given as (direction,
    epoch seconds): direction "low"/"high" when the reading is abnormal (and eligible), None
    otherwise. A run is broken by a None, a change of direction, a missing time, or more
    than `gap_seconds` between consecutive readings."""
    episodes: list[Episode] = []
    start: int | None = None  # first reading of the current run

    def close(end: int) -> None:
        if start is not None and end - start + 1 >= minimum:
            episodes.append(Episode(start, end))

    for index, (direction, when) in enumerate(readings):
        if direction is None:
            close(index - 1)
            start = None
            continue
        if start is not None:
            prev_direction, prev_when = readings[index - 1]
            if (
                prev_direction != direction
                or when is None
                or prev_when is None
                or when - prev_when > gap_seconds
            ):
                close(index - 1)
                start = None
        if start is None:
            start = index
    close(len(readings) - 1)
    return episodes

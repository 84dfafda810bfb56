"""Episodes: runs of at least MIN_EPISODE_READINGS consecutive abnormal readings of one user
for one metric. Grouping readings into episodes turns a storm of alerts into a few events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MIN_EPISODE_READINGS = 3


@dataclass(frozen=True)
class Episode:
    start_index: int
    end_index: int  # inclusive

    @property
    def readings(self) -> int:
        return self.end_index - self.start_index + 1


def find_episodes(abnormal: Sequence[bool], minimum: int = MIN_EPISODE_READINGS) -> list[Episode]:
    """Runs of True of length >= minimum in a user's time-ordered readings of one metric."""
    episodes: list[Episode] = []
    start: int | None = None
    for index, flag in enumerate([*abnormal, False]):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            if index - start >= minimum:
                episodes.append(Episode(start, index - 1))
            start = None
    return episodes

"""A file's per-participant, per-day histograms kept on disk from analyze's history phase to
their save after the analysis (docs/baselines.md, "In the analyze stage"): each group of
participants' histograms pickled as they are made, read back one group at a time. Held in
memory instead, a 50M-row file's (36k participant-days of ~1,400 readings) were a large
part of the stage's 762 MB peak."""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

from healthpipe.domain.documents.history import DayHistogram
from healthpipe.domain.history import PackedDayHistogram


class HistogramSpool:
    """Histograms appended group by group to `path` (this process's own temporary file),
    given back unpacked one at a time, in the order they were added."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self.first_day: date | None = None
        self.last_day: date | None = None

    def add(self, histograms: Sequence[PackedDayHistogram]) -> None:
        if not histograms:
            return
        with self.path.open("ab") as out:
            pickle.dump(list(histograms), out, protocol=pickle.HIGHEST_PROTOCOL)
        self.count += len(histograms)
        first, last = min(h.day for h in histograms), max(h.day for h in histograms)
        self.first_day = first if self.first_day is None else min(self.first_day, first)
        self.last_day = last if self.last_day is None else max(self.last_day, last)

    def __iter__(self) -> Iterator[DayHistogram]:
        if not self.count:
            return
        with self.path.open("rb") as spooled:
            while True:
                try:
                    # S301: a file this object wrote, in the stage's private temporary folder
                    group: list[PackedDayHistogram] = pickle.load(spooled)  # noqa: S301
                except EOFError:
                    return
                for packed in group:
                    yield packed.unpack()

"""History-aware baselines from per-day histograms (pure; see `documents/history.py`).

A participant's baseline of a vital is the median and robust spread (`domain/baseline.py`:
the MAD, or the mean absolute deviation about the median when the MAD is 0) of their
readings in the window: the `window_days` reading days before the file's first reading day,
through the file's last reading day. The readings are the participant's other files' of those
days (the history) plus this file's. Values are counted at the chart's resolution
(`clinical.CHART_SCALE`: 1 bpm, 1 %, 0.1 °C, 1 mmHg), so the statistics are exact at that
resolution and cost the number of distinct values, not of readings: medians are
`quantile_cont` (the mean of the two middle values of an even count), as the file-only
baselines in SQL compute them.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from healthpipe.domain import baseline as bl
from healthpipe.domain import clinical as cl
from healthpipe.domain.documents.history import (
    DailyVitalSummary,
    DayHistogram,
    ParticipantHistory,
    VitalBaseline,
)


def merge(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    """The sum of histograms (counts of equal bins added)."""
    total: dict[int, int] = {}
    for histogram in histograms:
        for b, n in histogram.items():
            total[b] = total.get(b, 0) + n
    return total


def _median(counts: Iterable[tuple[float, int]]) -> float:
    """quantile_cont(0.5) of the values the (value, count) pairs expand to: rank (N - 1) / 2."""
    items = sorted((x, n) for x, n in counts if n > 0)
    total = sum(n for _, n in items)
    if total == 0:
        raise ValueError("median of no values")
    rank = (total - 1) / 2
    lo_i, hi_i = math.floor(rank), math.ceil(rank)
    lo = hi = None
    seen = 0
    for x, n in items:
        if lo is None and lo_i < seen + n:
            lo = x
        if hi_i < seen + n:
            hi = x
            break
        seen += n
    assert lo is not None and hi is not None
    return lo if lo == hi else (lo + hi) / 2


def median_mad_meanad(counts: Mapping[int, int]) -> tuple[float, float, float, int]:
    """(median, MAD, mean absolute deviation about the median, n) of a histogram, in bins."""
    med = _median(counts.items())
    deviations: dict[float, int] = {}
    for b, n in counts.items():
        if n > 0:
            d = abs(b - med)
            deviations[d] = deviations.get(d, 0) + n
    total = sum(deviations.values())
    meanad = sum(d * n for d, n in deviations.items()) / total
    return med, _median(deviations.items()), meanad, total


def vital_baseline(
    vital: str, counts: Mapping[int, int], window_start: date, window_end: date
) -> VitalBaseline | None:
    """The baseline of `vital` from its histogram; None below `baseline.MIN_READINGS`."""
    if sum(counts.values()) < bl.MIN_READINGS:
        return None
    med, mad, meanad, n = median_mad_meanad(counts)
    scale = cl.CHART_SCALE[vital]
    return VitalBaseline(
        vital=vital,
        median=med / scale,
        spread=(mad if mad > 0 else meanad) / scale,
        mad=mad / scale,
        meanad=meanad / scale,
        n=n,
        window_start=window_start,
        window_end=window_end,
    )


def _summary(day: date, vital: str, counts: Mapping[int, int]) -> DailyVitalSummary:
    median = _median(counts.items()) / cl.CHART_SCALE[vital]
    # built from checked values: the document without a second validation
    return DailyVitalSummary.model_construct(day=day, n=sum(counts.values()), median=median)


def day_histogram(
    label: str, day: date, dataset_id: str, bins: dict[str, dict[int, int]]
) -> DayHistogram:
    """A participant-day's histogram of one file, with each vital's count and median.

    Built without a second validation: the document holds `bins` itself, not a copy (analyze
    keeps a file's histograms until it stores them, and a copy of every participant-day's
    bins was tens of MB at 2M readings: docs/baselines.md, "In the analyze stage")."""
    summary = {vital: _summary(day, vital, counts) for vital, counts in bins.items() if counts}
    return DayHistogram.model_construct(
        pseudonym=label, day=day, dataset_id=dataset_id, bins=bins, summary=summary
    )


@dataclass(frozen=True, slots=True)
class PackedDayHistogram:
    """A `DayHistogram` held until it is stored: its bins as two arrays per vital (values,
    counts) instead of a dict of Python ints, its day summaries as tuples (vital, day, n,
    median) instead of documents. Analyze holds a file's histograms through its analysis,
    where those cost several times as much (docs/baselines.md, "In the analyze stage").
    `unpack()` gives back the same document."""

    pseudonym: str
    day: date
    dataset_id: str
    vitals: tuple[str, ...]
    values: tuple[array[int], ...]
    counts: tuple[array[int], ...]
    summary: tuple[tuple[str, date, int, float], ...]

    @classmethod
    def pack(cls, h: DayHistogram) -> PackedDayHistogram:
        return cls(
            pseudonym=h.pseudonym,
            day=h.day,
            dataset_id=h.dataset_id,
            vitals=tuple(h.bins),
            values=tuple(array("q", bins) for bins in h.bins.values()),
            counts=tuple(array("q", bins.values()) for bins in h.bins.values()),
            summary=tuple((v, s.day, s.n, s.median) for v, s in h.summary.items()),
        )

    def unpack(self) -> DayHistogram:
        bins = {
            vital: dict(zip(values, counts, strict=True))
            for vital, values, counts in zip(self.vitals, self.values, self.counts, strict=True)
        }
        return DayHistogram.model_construct(
            pseudonym=self.pseudonym,
            day=self.day,
            dataset_id=self.dataset_id,
            bins=bins,
            summary={
                vital: DailyVitalSummary.model_construct(day=day, n=n, median=median)
                for vital, day, n, median in self.summary
            },
        )


def window(first_day: date, last_day: date, window_days: int) -> tuple[date, date]:
    """The reading days a file's baselines cover: `window_days` before its first day,
    through its last day."""
    return first_day - timedelta(days=window_days), last_day


def participant_history(
    label: str,
    earlier: Iterable[DayHistogram],
    current: Iterable[DayHistogram],
    window_start: date,
    window_end: date,
) -> ParticipantHistory:
    """One participant's baselines and daily medians from their other files' histograms
    (`earlier`; days outside the window are ignored) and this file's (`current`)."""
    before = [h for h in earlier if window_start <= h.day <= window_end]
    by_day: dict[date, list[DayHistogram]] = {}
    for h in [*before, *current]:
        by_day.setdefault(h.day, []).append(h)
    ordered = sorted(by_day.items())
    baselines: dict[str, VitalBaseline] = {}
    daily: dict[str, list[DailyVitalSummary]] = {}
    for vital in cl.CHART_SCALE:
        total: dict[int, int] = {}
        days: list[DailyVitalSummary] = []
        for day, hs in ordered:
            if len(hs) == 1:
                counts = hs[0].bins.get(vital)
                known = hs[0].summary.get(vital)
            else:
                counts, known = merge(h.bins.get(vital, {}) for h in hs), None
            if not counts:
                continue
            days.append(known or _summary(day, vital, counts))
            for b, k in counts.items():
                total[b] = total.get(b, 0) + k
        if days:
            daily[vital] = days
        found = vital_baseline(vital, total, window_start, window_end)
        if found is not None:
            baselines[vital] = found
    return ParticipantHistory(
        pseudonym=label,
        has_history=bool(before),
        window_start=window_start,
        window_end=window_end,
        history_days=len({h.day for h in before}),
        baselines=baselines,
        daily=daily,
    )


def prune_before(first_day: date, window_days: int) -> date:
    """The oldest reading day still needed once a file whose first reading day is `first_day`
    is stored: the start of its own window (so analysing it again finds the same history),
    and no later file's window starts before it. Histograms of earlier days may be dropped
    (a file of older readings arriving later finds less history: docs/baselines.md)."""
    return first_day - timedelta(days=window_days)

"""Analyze's history phase (docs/baselines.md, "In the analyze stage"), one group of
participants at a time: the group's day counts, its histograms (spooled to disk until they
are saved after the analysis), its participants' histories from the store over the file's
window, and what the analysis keeps of them: the history baselines, each participant's
baselines for the report and the trends. A file analysed whole is one group. Memory is
that of the largest group, not of the file (the harness's 50M rows: 36k participant-days
of ~1,400 readings, each with its own counts of distinct values)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from healthpipe.dataops.analysis.day_counts import BaselineRow, DayCount, day_counts, day_range
from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.histogram_spool import HistogramSpool
from healthpipe.domain import history as hist
from healthpipe.domain.documents import DayHistogram, ParticipantHistory, Trends, VitalBaseline
from healthpipe.domain.identity import pseudonym
from healthpipe.domain.trends import file_trends, merge_trends
from healthpipe.stages.base import Ports


@dataclass
class FileHistory:
    """What the analysis needs of its participants' histories, and the file's histograms to
    save after it. `known`: each participant's baselines (None: no history yet)."""

    spool: HistogramSpool
    trends: Trends | None = None
    baselines: list[BaselineRow] = field(default_factory=list)
    known: dict[str, dict[str, VitalBaseline] | None] = field(default_factory=dict)


def file_history(
    processed: Path,
    groups: Sequence[Path] | None,
    dataset_id: str,
    limits: EngineLimits,
    ports: Ports,
    spool: Path,
) -> FileHistory:
    """The history phase of the processed file `processed`, over its `groups` of
    participants (their readings, in participant order), or whole (None). The window is the
    file's, whatever the group: `window_days` before its first reading day, through its last."""
    found = FileHistory(HistogramSpool(spool))
    window_days = ports.analyze_settings.baseline_window_days
    span = None if groups is None else day_range(processed, limits)
    if groups is not None and span is None:
        return found  # no reading with a vital that has a baseline
    trends: list[Trends] = []
    for readings in [processed] if groups is None else groups:
        counts = day_counts(readings, limits)
        if not counts:
            continue
        if span is None:  # the file whole: its days are its counts'
            days = [day for _, day, _, _ in counts]
            span = (min(days), max(days))
        current, histories = _histories(counts, dataset_id, ports, hist.window(*span, window_days))
        # the day counts only built the histograms; these wait on disk to be saved
        del counts
        found.spool.add(current)
        del current
        trends.append(file_trends(histories, window_days))
        found.baselines += baseline_rows(histories)
        found.known |= {u: h.baselines if h.has_history else None for u, h in histories.items()}
    found.trends = merge_trends(trends)
    return found


def save_history(histograms: Iterable[DayHistogram], first_day: date | None, ports: Ports) -> None:
    """Store this file's histograms (read one at a time as the store writes them, in one
    transaction; the spool's, or the grouped analysis's file of them) and drop its
    participants' days before its own window, which starts `window_days` before its first
    reading day `first_day`, so analysing it again finds the history its first analysis
    used. None: the file has no histogram."""
    if first_day is not None:
        window_days = ports.analyze_settings.baseline_window_days
        ports.history.save(histograms, hist.prune_before(first_day, window_days))


def _histories(
    counts: list[DayCount], dataset_id: str, ports: Ports, window: tuple[date, date]
) -> tuple[list[hist.PackedDayHistogram], dict[str, ParticipantHistory]]:
    """These counts' per-participant, per-day histograms (packed), and each participant's
    history (by raw id, for this analysis only): baselines over the window before the file
    plus the file, from the histograms of their other files in the store."""
    secret = ports.analyze_settings.pseudonym_secret
    bins: dict[tuple[str, date], dict[str, dict[int, int]]] = {}
    for user_id, day, vital, by_value in counts:
        bins.setdefault((user_id, day), {})[vital] = by_value
    labels = {user_id: pseudonym(user_id, secret) for user_id, _ in bins}
    current = [
        hist.day_histogram(labels[user_id], day, dataset_id, by_vital)
        for (user_id, day), by_vital in bins.items()
    ]
    start, end = window
    earlier: dict[str, list[DayHistogram]] = {}
    for h in ports.history.load(list(labels.values()), start, end):
        if h.dataset_id != dataset_id:  # a re-analysis does not count the file twice
            earlier.setdefault(h.pseudonym, []).append(h)
    mine: dict[str, list[DayHistogram]] = {}
    for h in current:
        mine.setdefault(h.pseudonym, []).append(h)
    histories = {
        user_id: hist.participant_history(label, earlier.get(label, []), mine[label], start, end)
        for user_id, label in labels.items()
    }
    return [hist.PackedDayHistogram.pack(h) for h in current], histories


def baseline_rows(histories: dict[str, ParticipantHistory]) -> list[BaselineRow]:
    """The history baselines of participants with a history (the others keep the file's)."""
    return [
        (user_id, b.vital, b.median, b.mad, b.meanad)
        for user_id, found in sorted(histories.items())
        if found.has_history
        for b in found.baselines.values()
    ]

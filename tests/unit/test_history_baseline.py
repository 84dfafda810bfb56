"""History-aware baselines from per-day histograms (domain/history.py), against an independent
computation on the expanded values (statistics.median)."""

from __future__ import annotations

import math
import random
import statistics
from datetime import date, timedelta

import pytest

from healthpipe.domain import clinical as cl
from healthpipe.domain import history as hi
from healthpipe.domain.documents.history import DayHistogram, ParticipantHistory
from healthpipe.domain.identity import (
    PARTICIPANT_BUCKETS,
    bucket_of_pseudonym,
    participant_bucket,
    pseudonym,
)

D0 = date(2025, 3, 1)


def to_bin(vital: str, value: float) -> int:
    """The SQL's binning (dataops/analysis/day_counts.py), half-up as clinical.chart_value."""
    return math.floor(value * cl.CHART_SCALE[vital] + 0.5 + cl.ROUNDING_EPSILON)


def expanded(counts: dict[int, int]) -> list[int]:
    return [b for b, n in counts.items() for _ in range(n)]


def day_hist(day: date, values: dict[str, list[float]], dataset: str = "d1") -> DayHistogram:
    bins = {v: hi.merge([{to_bin(v, x): 1} for x in xs]) for v, xs in values.items()}
    return DayHistogram(pseudonym="P-0123456789abcdef", day=day, dataset_id=dataset, bins=bins)


@pytest.mark.parametrize("seed", range(6))
def test_histogram_median_mad_meanad_match_the_expanded_values(seed: int) -> None:
    rng = random.Random(seed)
    counts = {rng.randint(50, 90): rng.randint(1, 5) for _ in range(rng.randint(1, 30))}
    values = expanded(counts)
    med, mad, meanad, n = hi.median_mad_meanad(counts)
    assert n == len(values)
    assert med == statistics.median(values)
    deviations = [abs(x - statistics.median(values)) for x in values]
    assert mad == statistics.median(deviations)
    assert meanad == pytest.approx(statistics.fmean(deviations))


def test_temperature_bins_are_tenths_of_a_degree() -> None:
    found = hi.vital_baseline("temp_c", {366: 5, 368: 4}, D0, D0)
    assert found is not None and found.median == pytest.approx(36.6) and found.n == 9


def test_fewer_than_min_readings_have_no_baseline() -> None:
    assert hi.vital_baseline("heart_rate", {60: 7}, D0, D0) is None


def test_no_history_yet_baseline_from_the_file_alone() -> None:
    start, end = hi.window(D0, D0, 28)
    current = [day_hist(D0, {"heart_rate": [60, 61, 62, 63, 64, 65, 66, 67, 68]})]
    found = hi.participant_history("P-0123456789abcdef", [], current, start, end)
    assert not found.has_history and found.history_days == 0
    assert found.baselines["heart_rate"].median == 64
    assert found.baselines["heart_rate"].window_start == D0 - timedelta(days=28)
    assert ParticipantHistory.model_validate_json(found.dumps()) == found


def test_history_moves_the_baseline_and_old_days_drop_out_of_the_window() -> None:
    earlier = [
        day_hist(D0 - timedelta(days=k), {"heart_rate": [60.0] * 10}, f"e{k}") for k in (1, 2, 3)
    ]
    stale = day_hist(D0 - timedelta(days=40), {"heart_rate": [200.0] * 100}, "old")
    current = [day_hist(D0, {"heart_rate": [80.0] * 9})]
    start, end = hi.window(D0, D0, 28)
    found = hi.participant_history("P-0123456789abcdef", [*earlier, stale], current, start, end)
    assert found.has_history and found.history_days == 3
    assert found.baselines["heart_rate"].median == 60  # 30 at 60 bpm outweigh 9 at 80
    assert found.baselines["heart_rate"].n == 39  # the stale day is outside the window
    assert [d.median for d in found.daily["heart_rate"]] == [60, 60, 60, 80]
    file_only = hi.participant_history("P-0123456789abcdef", [], current, start, end)
    assert file_only.baselines["heart_rate"].median == 80


def test_incremental_merge_equals_recompute_from_scratch() -> None:
    rng = random.Random(7)
    days = [D0 + timedelta(days=k) for k in range(10)]
    files = [day_hist(d, {"systolic_bp": [rng.gauss(125, 8) for _ in range(12)]}) for d in days]
    start, end = hi.window(days[-1], days[-1], 28)
    incremental = hi.participant_history("P-0123456789abcdef", files[:-1], files[-1:], start, end)
    allvalues = [
        b for f in files for b in expanded({int(k): n for k, n in f.bins["systolic_bp"].items()})
    ]
    got = incremental.baselines["systolic_bp"]
    assert got.n == len(allvalues) == 120
    assert got.median == statistics.median(allvalues)
    assert got.mad == statistics.median([abs(x - got.median) for x in allvalues])


def test_participant_bucket_is_the_pseudonyms_bucket() -> None:
    buckets = {participant_bucket(f"user-{i}", "s3cret") for i in range(500)}
    assert buckets <= set(range(PARTICIPANT_BUCKETS)) and len(buckets) > 48
    label = pseudonym("user-1", "s3cret")
    assert participant_bucket("user-1", "s3cret") == bucket_of_pseudonym(label)
    assert participant_bucket("user-1", "other") != participant_bucket("user-1", "s3cret") or (
        pseudonym("user-1", "other") != label
    )


def test_stored_day_summaries_equal_the_recomputed_ones() -> None:
    rng = random.Random(3)
    days = [D0 + timedelta(days=k) for k in range(5)]
    plain = [day_hist(d, {"heart_rate": [rng.gauss(70, 6) for _ in range(11)]}) for d in days]
    summarised = [hi.day_histogram(h.pseudonym, h.day, h.dataset_id, h.bins) for h in plain]
    start, end = hi.window(days[-1], days[-1], 28)
    a = hi.participant_history("P-0123456789abcdef", plain[:-1], plain[-1:], start, end)
    b = hi.participant_history("P-0123456789abcdef", summarised[:-1], summarised[-1:], start, end)
    assert a.daily == b.daily and a.baselines == b.baselines
    assert [d.median for d in b.daily["heart_rate"]] == [
        statistics.median(expanded(h.bins["heart_rate"])) for h in plain
    ]


def test_a_day_histogram_holds_its_bins_and_is_the_validated_document() -> None:
    # analyze keeps a file's histograms until it stores them: they hold the day counts'
    # dicts, not a copy of each (issue 17), and are the document validation would give
    bins = {"heart_rate": {60: 2, 71: 1}, "spo2": {97: 3}, "temp_c": {}}
    got = hi.day_histogram("P-0123456789abcdef", D0, "d1", bins)
    assert got.bins["heart_rate"] is bins["heart_rate"]
    validated = DayHistogram.model_validate(got.as_json())
    assert validated == got and validated.as_json() == got.as_json()
    assert DayHistogram.model_validate_json(got.dumps()).as_json() == got.as_json()
    assert list(got.summary) == ["heart_rate", "spo2"]


def test_a_packed_day_histogram_unpacks_to_the_same_document() -> None:
    # analyze holds the file's histograms packed through its analysis and stores them unpacked
    bins = {"heart_rate": {60: 2, 71: 1, 250: 4}, "temp_c": {366: 1, 421: 2}, "spo2": {}}
    day = hi.day_histogram("P-0123456789abcdef", D0, "d1", bins)
    got = hi.PackedDayHistogram.pack(day).unpack()
    assert got == day and got.as_json() == day.as_json()
    assert got.dumps() == day.dumps()  # the stored JSON text: same keys, same order

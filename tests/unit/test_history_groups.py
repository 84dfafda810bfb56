"""Issue 17: analyze's history phase group by group (`stages/analyze_history.py`), and the
pieces it rests on: the file's day range without its day counts, the trends of a file merged
from its groups', and the histograms spooled to disk until they are saved."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from healthpipe.dataops.analysis.day_counts import day_counts, day_range
from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.histogram_spool import HistogramSpool
from healthpipe.domain import history as hist
from healthpipe.domain.documents import DayHistogram, ParticipantHistory, Trend, Trends
from healthpipe.domain.trends import file_trends, merge_trends

LIMITS = EngineLimits(memory_limit_mb=128, threads=1)


def _parquet(path: Path, rows: list[str]) -> Path:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE r (event_time TIMESTAMPTZ, user_id VARCHAR, heart_rate DOUBLE, "
        "spo2 DOUBLE, steps BIGINT, temp_c DOUBLE, systolic_bp DOUBLE, diastolic_bp DOUBLE)"
    )
    con.execute("SET TimeZone = 'UTC'")
    for values in rows:
        con.execute(f"INSERT INTO r VALUES ({values})")
    con.execute(f"COPY r TO '{path}' (FORMAT parquet)")
    con.close()
    return path


def test_the_day_range_is_that_of_the_day_counts(tmp_path: Path) -> None:
    # the earliest and the latest readings have no vital with a baseline: UNPIVOT leaves them
    # out of the day counts, so they must not widen the file's window either
    file = _parquet(
        tmp_path / "r.parquet",
        [
            "'2025-05-30 23:59:59+00', 'u1', NULL, NULL, 10, NULL, NULL, NULL",
            "'2025-06-01 00:00:00+00', 'u1', 61, 97, 0, 36.6, 120, 80",
            "'2025-06-03 23:59:59+00', 'u2', NULL, 98, 0, NULL, NULL, NULL",
            "'2025-06-04 10:00:00+00', NULL, 70, 97, 0, 36.6, 120, 80",
            "'2025-06-05 10:00:00+00', 'u3', NULL, NULL, 5, NULL, NULL, NULL",
        ],
    )
    days = [day for _, day, _, _ in day_counts(file, LIMITS)]
    assert day_range(file, LIMITS) == (min(days), max(days)) == (date(2025, 6, 1), date(2025, 6, 3))
    empty = _parquet(
        tmp_path / "e.parquet", ["'2025-06-01 00:00:00+00', 'u1', NULL, NULL, 1, NULL, NULL, NULL"]
    )
    assert day_counts(empty, LIMITS) == [] and day_range(empty, LIMITS) is None


def _trend(user_id: str, rule: str) -> Trend:
    return Trend(
        user_id=user_id, metric="heart_rate", rule=rule, criterion="c", span_days=14, days=14,
        first_day="2025-06-01", last_day="2025-06-14", slope_per_day=1, change=14, start=60,
        end=74,
    )  # fmt: skip


def test_merged_trends_are_the_whole_files_in_user_order_and_bounded() -> None:
    a = Trends(
        window_days=28, participants_assessed=3, flagged=[_trend("u1", "r1"), _trend("u1", "r2")]
    )
    b = Trends(window_days=28, participants_assessed=2, flagged=[_trend("u3", "r1")])
    c = Trends(window_days=28, participants_assessed=0, flagged=[])
    merged = merge_trends([a, c, b])
    assert merged is not None
    assert merged.participants_assessed == 5
    assert [(t.user_id, t.rule) for t in merged.flagged] == [
        ("u1", "r1"),
        ("u1", "r2"),
        ("u3", "r1"),
    ]
    assert merge_trends([a, b], limit=2) == Trends(
        window_days=28, participants_assessed=5, flagged=a.flagged
    )
    assert merge_trends([]) is None


def test_file_trends_of_groups_merge_to_the_whole_files() -> None:
    # one participant rising 1 bpm a day for 20 days, one flat, one with 2 days: in two
    # groups or one, the same trends
    def history(label: str, slope: int, days: int) -> ParticipantHistory:
        current = [
            hist.day_histogram(
                label, date(2025, 6, 1 + d), "x", {"heart_rate": {60 + d * slope: 24}}
            )
            for d in range(days)
        ]
        start, end = hist.window(date(2025, 6, 1), date(2025, 6, 20), 28)
        return hist.participant_history(label, [], current, start, end)

    histories = {
        "u1": history("P1", 1.0, 20),
        "u2": history("P2", 0.0, 20),
        "u3": history("P3", 1.0, 2),
    }
    whole = file_trends(histories, 28)
    parts = [
        file_trends({"u1": histories["u1"]}, 28),
        file_trends({k: histories[k] for k in ("u2", "u3")}, 28),
    ]
    assert whole.flagged and merge_trends(parts) == whole


def test_the_spool_gives_back_the_histograms_in_order(tmp_path: Path) -> None:
    made = [
        hist.day_histogram(f"P{i}", date(2025, 6, 1 + i % 5), "d", {"heart_rate": {60 + i: 2}})
        for i in range(7)
    ]
    spool = HistogramSpool(tmp_path / "h.pickle")
    assert list(spool) == [] and spool.first_day is None and spool.last_day is None
    spool.add([hist.PackedDayHistogram.pack(h) for h in made[:3]])
    spool.add([])
    spool.add([hist.PackedDayHistogram.pack(h) for h in made[3:]])
    back: list[DayHistogram] = list(spool)
    assert [h.as_json() for h in back] == [h.as_json() for h in made]
    assert spool.count == 7 and (spool.first_day, spool.last_day) == (
        date(2025, 6, 1),
        date(2025, 6, 5),
    )

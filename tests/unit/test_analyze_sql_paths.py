"""The analysis SQL against a plain reference formulation on random readings.

`analyze_parquet` finds anomalies from one coded BIGINT per reading, baselines from counts of
distinct values, and works over groups of users; the reference here is the straightforward
SQL (a sorted copy of every reading, `clinical_anomalies_sql`, `median`, `DISTINCT ON` and
`mode`). Both must give the same anomalies (the same rows, in user, time order) and episodes,
whatever the number of groups.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from healthpipe.dataops import analysis as an
from healthpipe.dataops.analysis import findings
from healthpipe.dataops.engine import EngineLimits
from healthpipe.domain import baseline as bl
from healthpipe.domain.anomaly_sql import (
    BASELINE_METRICS,
    outside_normal_sql,
    quantiles_from_counts_sql,
)
from healthpipe.domain.clinical import EPISODE_GAP_SECONDS, LOW_SIDE_KINDS, RESOLUTION
from healthpipe.domain.episodes import MIN_EPISODE_READINGS
from support.duck import insert_rows
from support.readings import write_processed
from support.twins import clinical_anomalies_sql

T0 = datetime(2025, 9, 17, 12, 0, tzinfo=UTC)
COLUMNS = ("source_row", "event_time", "user_id", "heart_rate", "spo2", "steps", "temp_c",
           "systolic_bp", "diastolic_bp")  # fmt: skip
ROW_ORDER = "user_id, event_time NULLS LAST, source_row, metric, rule"


def _value(rng: random.Random, low: float, high: float, step: float) -> float | None:
    if rng.random() < 0.03:
        return None
    return round(rng.randrange(int(low / step), int(high / step) + 1) * step, 1)


def random_readings(seed: int, users: int = 7) -> list[tuple[Any, ...]]:
    """Users with runs of abnormal values, gaps, duplicate and missing times, rows out of
    time order; values on a coarse grid so medians fall between equal neighbours too."""
    rng = random.Random(seed)
    rows: list[tuple[Any, ...]] = []
    for u in range(users):
        count = rng.choice([5, 9, 40, 120])
        sick = rng.random() < 0.6
        for i in range(count):
            minute = i if rng.random() > 0.1 else max(0, i - 1)  # some equal times
            when = None if rng.random() < 0.02 else T0 + timedelta(minutes=minute)
            bad = sick and (i // 4) % 2 == 0
            rows.append(
                (
                    when,
                    f"u{u:02d}",
                    _value(rng, 35, 150, 1) if bad else _value(rng, 60, 95, 1),
                    _value(rng, 85, 100, 1) if bad else _value(rng, 95, 100, 1),
                    _value(rng, 0, 500, 1),
                    _value(rng, 34.5, 40, 0.1) if bad else _value(rng, 36.2, 37.4, 0.1),
                    _value(rng, 85, 230, 1) if bad else _value(rng, 110, 125, 1),
                    _value(rng, 60, 125, 1) if bad else _value(rng, 70, 80, 1),
                )
            )
    rng.shuffle(rows)
    return [(n, *row) for n, row in enumerate(rows, start=1)]


def reference(parquet: Path) -> tuple[list[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """Anomaly rows (in file order) and episodes, the plain way."""
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            "CREATE TABLE readings AS SELECT *, row_number() OVER () AS ord FROM ("
            f"SELECT * FROM read_parquet('{parquet}') ORDER BY user_id, event_time NULLS LAST, "
            "source_row)"
        )
        baseline = []
        for m in BASELINE_METRICS:
            res = RESOLUTION[m]
            z = (
                f"CASE WHEN b.mad > 0 THEN {bl.CONSISTENCY} * (r.{m} - b.med) / "
                f"greatest(b.mad, {res}) ELSE (r.{m} - b.med) / "
                f"({bl.MEANAD_CONSISTENCY} * greatest(b.meanad, {res})) END"
            )
            baseline.append(
                f"SELECT source_row, user_id, event_time, ord, '{m}' AS metric, "
                "'baseline_deviation' AS kind, "
                f"CASE WHEN abs(z) > {bl.STRONG_THRESHOLD} AND outside THEN 2 ELSE 1 END "
                "AS severity, value, 'baseline' AS rule FROM ("
                f"SELECT r.*, {z} AS z, r.{m} AS value, {outside_normal_sql(m, 'r.' + m)} "
                "AS outside FROM readings r JOIN ("
                f"SELECT m.user_id, m.med, median(abs(x.{m} - m.med)) AS mad, "
                f"avg(abs(x.{m} - m.med)) AS meanad FROM readings x "
                f"JOIN (SELECT user_id, median({m}) AS med FROM readings GROUP BY user_id "
                f"HAVING count({m}) >= {bl.MIN_READINGS}) m USING (user_id) "
                "GROUP BY m.user_id, m.med) b USING (user_id)) "
                f"WHERE abs(z) > {bl.THRESHOLD}"
            )
        con.execute(
            f"CREATE TABLE anomalies AS {clinical_anomalies_sql('readings')} UNION ALL "
            + " UNION ALL ".join(baseline)
        )
        rows = con.execute(
            "SELECT source_row, user_id, event_time, metric, kind, severity, value, rule "
            f"FROM anomalies ORDER BY {ROW_ORDER}"
        ).fetchall()
        low = ", ".join(f"'{k}'" for k in sorted(LOW_SIDE_KINDS))
        worst = "severity DESC, CASE WHEN dir = 'low' THEN value ELSE -value END, ord"
        episodes = con.execute(
            f"WITH flagged AS (SELECT *, CASE WHEN kind IN ({low}) THEN 'low' ELSE 'high' END "
            "AS dir FROM anomalies WHERE rule <> 'baseline'), "
            "breaks AS (SELECT *, CASE WHEN lag(ord) OVER w = ord - 1 AND event_time - "
            f"lag(event_time) OVER w <= INTERVAL {EPISODE_GAP_SECONDS} SECOND THEN 0 ELSE 1 END "
            "AS starts FROM flagged WINDOW w AS (PARTITION BY user_id, metric, dir ORDER BY ord)), "
            "runs AS (SELECT *, sum(starts) OVER (PARTITION BY user_id, metric, dir ORDER BY ord) "
            "AS run FROM breaks) "
            "SELECT user_id, metric, kind, severity, readings, start_time, end_time, peak FROM ("
            f"SELECT user_id, metric, first(kind ORDER BY {worst}) AS kind, "
            "max(severity) AS severity, count(*) AS readings, min(event_time) AS start_time, "
            f"max(event_time) AS end_time, first(value ORDER BY {worst}) AS peak FROM runs "
            f"GROUP BY user_id, metric, dir, run HAVING count(*) >= {MIN_EPISODE_READINGS})"
        ).fetchall()
    finally:
        con.close()
    return rows, set(episodes)


def analyzed(
    tmp_path: Path, parquet: Path, name: str
) -> tuple[dict[str, Any], list[tuple[Any, ...]], set[tuple[Any, ...]]]:
    out = tmp_path / f"{name}.parquet"
    limits = EngineLimits(memory_limit_mb=128, threads=2, temp_dir=tmp_path / name)
    top = an.AnalysisLimits(top_episodes=10_000)
    facts = an.analyze_parquet(parquet, out, limits=limits, analysis_limits=top)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        rows = con.execute(
            "SELECT source_row, user_id, event_time, metric, kind, severity, value, rule "
            f"FROM read_parquet('{out}')"
        ).fetchall()
    finally:
        con.close()
    episodes = {
        (
            e["user_id"],
            e["metric"],
            e["kind"],
            {"low": 1, "medium": 2, "high": 3}[e["severity"]],
            e["readings"],
            e["start_time"],
            e["end_time"],
            e["peak_value"],
        )
        for e in facts["episodes"]["list"]
    }
    return facts, rows, episodes


def _iso(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(v.isoformat() if isinstance(v, datetime) else v for v in r) for r in rows]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_group_and_many_groups_match_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    parquet = write_processed(tmp_path / "readings.parquet", random_readings(seed))
    rows, episodes = reference(parquet)
    assert rows and episodes  # the data has both
    one, one_rows, one_episodes = analyzed(tmp_path, parquet, "one")
    monkeypatch.setattr(findings, "MIN_READINGS_PER_GROUP", 30)
    monkeypatch.setattr(findings, "READINGS_PER_MB", 0)
    many, many_rows, many_episodes = analyzed(tmp_path, parquet, "many")
    assert one_rows == rows  # same rows, same order
    assert many_rows == rows
    expected = {(*_iso([e])[0][:-1], round(e[-1], 4)) for e in episodes}
    assert one_episodes == many_episodes == expected
    assert one == many
    assert one["anomalies"]["total"] == len(rows)
    assert one["anomalies"]["readings_flagged"] == len({r[0] for r in rows})
    assert one["episodes"]["total"] == len(episodes)


def test_an_episode_kind_is_that_of_its_worst_reading(tmp_path: Path) -> None:
    # "a": 112, 135, 120 bpm: the 135 (NEWS2 3) names the episode; "b": 45, 100, 45, 100: no
    # run in one direction is long enough
    series = {"a": [112, 135, 120, 70], "b": [45, 100, 45, 100, 70]}
    rows: list[tuple[Any, ...]] = []
    for user, values in series.items():
        for i, hr in enumerate(values):
            rows.append((len(rows) + 1, T0 + timedelta(minutes=i), user, float(hr), 98.0,
                         10.0, 36.8, 115.0, 75.0))  # fmt: skip
    parquet = write_processed(tmp_path / "readings.parquet", rows)
    _, _, episodes = analyzed(tmp_path, parquet, "run")
    _, expected = reference(parquet)
    assert {(e[0], e[2], e[-1]) for e in episodes} == {("a", "tachycardia_news2_3", 135.0)}
    assert {(e[0], e[2]) for e in expected} == {(e[0], e[2]) for e in episodes}


def test_quantiles_from_counts_equal_quantile_cont() -> None:
    rng = random.Random(7)
    con = duckdb.connect(":memory:")
    try:
        grid = [0.1, 0.2, 0.7, 1.3, 2.9, 36.6, 36.7, 1e-3, 97.0]
        values = [(g, rng.choice(grid) * rng.randint(1, 9))
                  for g in range(12) for _ in range(rng.randint(1, 25))]  # fmt: skip
        con.execute("CREATE TABLE v (g INTEGER, x DOUBLE)")
        insert_rows(con, "v", values)
        con.execute("CREATE TABLE c AS SELECT g, x, count(*) AS n FROM v GROUP BY g, x")
        qs = (0.05, 0.25, 0.5, 0.75, 0.95)
        got = con.execute(
            f"SELECT g, q, value FROM ({quantiles_from_counts_sql('c', ('g',), qs)})"
        ).fetchall()
        for q in qs:
            expected = dict(
                con.execute(f"SELECT g, quantile_cont(x, {q}) FROM v GROUP BY g").fetchall()
            )
            found = {g: v for g, qq, v in got if qq == q}
            assert found == pytest.approx(expected, rel=1e-12)
        # the baselines' medians (of values and of deviations) are exact
        medians = dict(con.execute("SELECT g, median(x) FROM v GROUP BY g").fetchall())
        assert {g: v for g, qq, v in got if qq == 0.5} == medians
    finally:
        con.close()


def test_an_empty_file_gives_empty_facts_and_an_empty_anomaly_file(tmp_path: Path) -> None:
    parquet = write_processed(tmp_path / "readings.parquet", [])
    facts, rows, episodes = analyzed(tmp_path, parquet, "empty")
    assert facts["readings"] == 0 and rows == [] and episodes == set()
    assert facts["anomalies"]["total"] == 0 and facts["users"]["total"] == 0
    con = duckdb.connect(":memory:")
    try:
        names = [
            r[0]
            for r in con.execute(
                f"DESCRIBE SELECT * FROM '{tmp_path / 'empty.parquet'}'"
            ).fetchall()
        ]
    finally:
        con.close()
    assert names == ["source_row", "user_id", "event_time", "metric", "kind", "severity",
                     "value", "rule", "systolic_bp", "diastolic_bp", "bp_trigger",
                     "during_activity", "conflicting", "with_clinical_finding"]  # fmt: skip

"""Clinical corpus: every band edge of the published charts plus decimals between edges, each
with the expected band written here from the chart (NEWS2 chart 1, RCP 2017; ACC/AHA 2017
BP categories), never computed by the code. A reading is scored at the chart's resolution
(whole numbers; 0.1 °C), rounded half-up. The corpus runs against the Python twin
(`domain/clinical.py`), the SQL expressions (`domain/anomaly_sql.py`) and the analysis SQL
path (`dataops.analysis.analyze_parquet`, one participant per case).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from healthpipe.dataops.analysis import analyze_parquet
from healthpipe.dataops.engine import EngineLimits
from healthpipe.domain import clinical as cl
from healthpipe.domain.anomaly_sql import bp_category_sql, news2_score_sql
from support.duck import insert_rows

# NEWS2 chart 1:   3      2       1         0          1          2        3
#   heart rate    ≤40     –     41–50     51–90     91–110    111–130    ≥131
#   SpO2 scale 1  ≤91   92–93   94–95      ≥96
#   systolic BP   ≤90  91–100  101–110   111–219                         ≥220
#   temperature ≤35.0     –   35.1–36.0 36.1–38.0 38.1–39.0    ≥39.1
NEWS2_CORPUS: list[tuple[str, float, int]] = [
    # heart rate
    ("heart_rate", 20, 3), ("heart_rate", 35, 3), ("heart_rate", 39, 3), ("heart_rate", 40, 3),
    ("heart_rate", 40.4, 3), ("heart_rate", 40.49, 3), ("heart_rate", 40.5, 1),
    ("heart_rate", 40.6, 1), ("heart_rate", 41, 1), ("heart_rate", 45, 1),
    ("heart_rate", 49.5, 1), ("heart_rate", 50, 1), ("heart_rate", 50.4, 1),
    ("heart_rate", 50.5, 0), ("heart_rate", 51, 0), ("heart_rate", 60, 0), ("heart_rate", 75, 0),
    ("heart_rate", 89.6, 0), ("heart_rate", 90, 0), ("heart_rate", 90.4, 0),
    ("heart_rate", 90.5, 1), ("heart_rate", 91, 1), ("heart_rate", 100, 1),
    ("heart_rate", 109.9, 1), ("heart_rate", 110, 1), ("heart_rate", 110.4, 1),
    ("heart_rate", 110.5, 2), ("heart_rate", 111, 2), ("heart_rate", 120, 2),
    ("heart_rate", 122, 2), ("heart_rate", 130, 2), ("heart_rate", 130.4, 2),
    ("heart_rate", 130.5, 3), ("heart_rate", 131, 3), ("heart_rate", 150, 3),
    ("heart_rate", 200, 3), ("heart_rate", 300, 3),
    # SpO2, scale 1
    ("spo2", 50, 3), ("spo2", 80, 3), ("spo2", 85, 3), ("spo2", 88, 3), ("spo2", 90, 3),
    ("spo2", 91, 3), ("spo2", 91.4, 3), ("spo2", 91.5, 2), ("spo2", 92, 2), ("spo2", 92.6, 2),
    ("spo2", 93, 2), ("spo2", 93.4, 2), ("spo2", 93.5, 1), ("spo2", 94, 1), ("spo2", 94.9, 1),
    ("spo2", 95, 1), ("spo2", 95.4, 1), ("spo2", 95.5, 0), ("spo2", 96, 0), ("spo2", 97, 0),
    ("spo2", 99.5, 0), ("spo2", 100, 0),
    # systolic blood pressure
    ("systolic_bp", 50, 3), ("systolic_bp", 70, 3), ("systolic_bp", 89, 3),
    ("systolic_bp", 90, 3), ("systolic_bp", 90.4, 3), ("systolic_bp", 90.5, 2),
    ("systolic_bp", 91, 2), ("systolic_bp", 95, 2), ("systolic_bp", 100, 2),
    ("systolic_bp", 100.4, 2), ("systolic_bp", 100.5, 1), ("systolic_bp", 101, 1),
    ("systolic_bp", 105, 1), ("systolic_bp", 110, 1), ("systolic_bp", 110.4, 1),
    ("systolic_bp", 110.5, 0), ("systolic_bp", 111, 0), ("systolic_bp", 120, 0),
    ("systolic_bp", 150, 0), ("systolic_bp", 180, 0), ("systolic_bp", 219, 0),
    ("systolic_bp", 219.4, 0), ("systolic_bp", 219.5, 3), ("systolic_bp", 220, 3),
    ("systolic_bp", 230, 3), ("systolic_bp", 300, 3),
    # temperature (°C, chart in tenths)
    ("temp_c", 30.0, 3), ("temp_c", 34.0, 3), ("temp_c", 34.9, 3), ("temp_c", 35.0, 3),
    ("temp_c", 35.04, 3), ("temp_c", 35.049, 3), ("temp_c", 35.05, 1), ("temp_c", 35.1, 1),
    ("temp_c", 35.5, 1), ("temp_c", 35.95, 1), ("temp_c", 36.0, 1), ("temp_c", 36.04, 1),
    ("temp_c", 36.05, 0), ("temp_c", 36.1, 0), ("temp_c", 36.8, 0), ("temp_c", 37.5, 0),
    ("temp_c", 38.0, 0), ("temp_c", 38.04, 0), ("temp_c", 38.05, 1), ("temp_c", 38.1, 1),
    ("temp_c", 38.5, 1), ("temp_c", 39.0, 1), ("temp_c", 39.04, 1), ("temp_c", 39.05, 2),
    ("temp_c", 39.1, 2), ("temp_c", 40.0, 2), ("temp_c", 42.0, 2), ("temp_c", 44.0, 2),
]  # fmt: skip

# ACC/AHA 2017: normal < 120 and < 80; elevated 120–129 and < 80; stage 1 130–139 or 80–89;
# stage 2 ≥ 140 or ≥ 90; hypertensive crisis above 180 and/or above 120.
N, E, S1, S2, C = (
    "normal",
    "elevated",
    "hypertension_stage_1",
    "hypertension_stage_2",
    ("hypertensive_crisis"),
)
BP_CORPUS: list[tuple[float, float, str]] = [
    (110, 70, N), (119, 79, N), (119.4, 79.4, N), (119.5, 70, E), (120, 79, E), (129, 79, E),
    (129.4, 79.4, E), (129.5, 70, S1), (130, 70, S1), (139, 89, S1), (115, 80, S1),
    (115, 79.5, S1), (139.4, 89.4, S1), (139.5, 70, S2), (140, 70, S2), (110, 90, S2),
    (118, 95, S2), (180, 120, S2), (180.4, 120.4, S2), (180.5, 100, C), (181, 80, C),
    (110, 121, C), (170, 121, C), (190, 100, C), (250, 130, C), (160, 120.5, C),
]  # fmt: skip


def test_the_corpus_is_large_and_covers_every_band() -> None:
    assert len(NEWS2_CORPUS) + len(BP_CORPUS) >= 120
    for param in cl.NEWS2_PARAMETERS:
        scores = {s for m, _, s in NEWS2_CORPUS if m == param.metric}
        assert scores == {b.score for b in param.bands}
    assert {c for _, _, c in BP_CORPUS} == {c.name for c in cl.BP_CATEGORIES}


@pytest.mark.parametrize(("metric", "value", "score"), NEWS2_CORPUS)
def test_news2_python_twin(metric: str, value: float, score: int) -> None:
    assert cl.news2_score(metric, value) == score


@pytest.mark.parametrize(("sbp", "dbp", "category"), BP_CORPUS)
def test_acc_aha_python_twin(sbp: float, dbp: float, category: str) -> None:
    assert cl.bp_category(sbp, dbp).name == category


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(":memory:")
    yield connection
    connection.close()


def test_news2_sql(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE c (i INTEGER, metric VARCHAR, v DOUBLE)")
    insert_rows(con, "c", [(i, m, v) for i, (m, v, _) in enumerate(NEWS2_CORPUS)])
    arms = " ".join(
        f"WHEN '{p.metric}' THEN {news2_score_sql(p.metric, 'v')}" for p in cl.NEWS2_PARAMETERS
    )
    got = [r[0] for r in con.execute(f"SELECT CASE metric {arms} END FROM c ORDER BY i").fetchall()]
    assert got == [s for _, _, s in NEWS2_CORPUS]


def test_acc_aha_sql(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE c (i INTEGER, systolic_bp DOUBLE, diastolic_bp DOUBLE)")
    insert_rows(con, "c", [(i, s, d) for i, (s, d, _) in enumerate(BP_CORPUS)])
    got = [r[0] for r in con.execute(f"SELECT {bp_category_sql()} FROM c ORDER BY i").fetchall()]
    assert got == [c for _, _, c in BP_CORPUS]


NORMAL = {"heart_rate": 70.0, "spo2": 98.0, "steps": 10.0, "temp_c": 36.8,
          "systolic_bp": 115.0, "diastolic_bp": 75.0}  # fmt: skip
BP_SEVERITY = {N: 0, E: 0, S1: 1, S2: 2, C: 3}


def test_the_analysis_sql_path(tmp_path: Path) -> None:
    """Every case as one participant's only reading (no baseline): the anomaly file holds
    the chart's score for the vital, and the ACC/AHA category of each pair."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    readings = [{**NORMAL, m: float(v)} for m, v, _ in NEWS2_CORPUS]
    readings += [{**NORMAL, "systolic_bp": float(s), "diastolic_bp": float(d)}
                 for s, d, _ in BP_CORPUS]  # fmt: skip
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            "CREATE TABLE r (source_row BIGINT, event_time TIMESTAMPTZ, user_id VARCHAR, "
            "heart_rate DOUBLE, spo2 DOUBLE, steps DOUBLE, temp_c DOUBLE, systolic_bp DOUBLE, "
            "diastolic_bp DOUBLE)"
        )
        insert_rows(
            con,
            "r",
            [(n, t0 + timedelta(minutes=n), f"case{n:03d}", r["heart_rate"], r["spo2"],
              r["steps"], r["temp_c"], r["systolic_bp"], r["diastolic_bp"])
             for n, r in enumerate(readings, start=1)],
        )  # fmt: skip
        con.execute(f"COPY r TO '{tmp_path / 'p.parquet'}' (FORMAT parquet)")
        analyze_parquet(
            tmp_path / "p.parquet",
            tmp_path / "a.parquet",
            limits=EngineLimits(memory_limit_mb=128, threads=1, temp_dir=tmp_path / "t"),
        )
        found = {
            (int(row), str(metric)): int(sev)
            for row, metric, sev in con.execute(
                f"SELECT source_row, metric, severity FROM '{tmp_path / 'a.parquet'}'"
            ).fetchall()
        }
    finally:
        con.close()
    for n, (metric, value, score) in enumerate(NEWS2_CORPUS, start=1):
        if metric == "systolic_bp" and score == 3 and value > 200:
            # ≥ 220 is also a hypertensive crisis: flagged once, as the crisis
            assert (n, metric) not in found
            assert found[(n, "blood_pressure")] == 3
        else:
            assert found.get((n, metric), 0) == score, (metric, value)
    first = len(NEWS2_CORPUS) + 1
    for n, (sbp, dbp, category) in enumerate(BP_CORPUS, start=first):
        assert found.get((n, "blood_pressure"), 0) == BP_SEVERITY[category], (sbp, dbp)

"""NEWS2 (RCP 2017, chart 1) band edges and ACC/AHA 2017 BP categories, in the Python tables
and in the SQL generated from them (run in DuckDB on the same values): they must agree with the
published chart and with each other."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from healthpipe.domain import clinical as cl
from healthpipe.domain.anomaly_sql import (
    bp_category_sql,
    bp_trigger_sql,
    news2_kind_sql,
    news2_score_sql,
    partial_news2_sql,
)
from support.duck import insert_rows
from support.twins import bp_severity_sql, clinical_anomalies_sql, partial_news2

# (value, score) at every edge of the published chart, plus far ends.
NEWS2_EDGES: dict[str, list[tuple[float, int]]] = {
    "heart_rate": [
        (0, 3), (20, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1),
        (111, 2), (130, 2), (131, 3), (300, 3),
    ],
    "spo2": [(50, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)],
    "systolic_bp": [
        (50, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0),
        (220, 3), (300, 3),
    ],
    "temp_c": [
        (30.0, 3), (35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1),
        (39.0, 1), (39.1, 2), (44.0, 2),
    ],
}  # fmt: skip

NORMAL_MIDDLE = {"heart_rate": 70, "spo2": 98, "systolic_bp": 150, "temp_c": 37.0}


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(":memory:")
    yield connection
    connection.close()


def sql_over(con: duckdb.DuckDBPyConnection, expr: str, values: list[float]) -> list[object]:
    """Evaluate `expr` (over column v) for each value, in order."""
    con.execute("CREATE OR REPLACE TEMP TABLE t (i INTEGER, v DOUBLE)")
    insert_rows(con, "t", list(enumerate(values)))
    return [r[0] for r in con.execute(f"SELECT {expr} FROM t ORDER BY i").fetchall()]


def edge_ids() -> list[str]:
    return [f"{m}={v:g}" for m, edges in NEWS2_EDGES.items() for v, _ in edges]


EDGE_CASES = [(m, v, s) for m, edges in NEWS2_EDGES.items() for v, s in edges]


@pytest.mark.parametrize(("metric", "value", "score"), EDGE_CASES, ids=edge_ids())
def test_news2_python_score_matches_the_chart(metric: str, value: float, score: int) -> None:
    assert cl.news2_score(metric, value) == score


@pytest.mark.parametrize("metric", sorted(NEWS2_EDGES))
def test_news2_sql_score_matches_the_chart(con: duckdb.DuckDBPyConnection, metric: str) -> None:
    values = [v for v, _ in NEWS2_EDGES[metric]]
    scores = sql_over(con, news2_score_sql(metric, "v"), values)
    assert scores == [s for _, s in NEWS2_EDGES[metric]]


@pytest.mark.parametrize("metric", sorted(NEWS2_EDGES))
def test_news2_kind_names_the_side_of_the_chart(
    con: duckdb.DuckDBPyConnection, metric: str
) -> None:
    values = [v for v, _ in NEWS2_EDGES[metric]]
    kinds_sql = sql_over(con, news2_kind_sql(metric, "v"), values)
    for (value, score), kind_sql in zip(NEWS2_EDGES[metric], kinds_sql, strict=True):
        kind = cl.NEWS2_BY_METRIC[metric].band_for(value).kind
        assert kind == kind_sql
        if score == 0:
            assert kind is None
            continue
        assert kind is not None
        info = cl.KINDS[kind]
        assert info.metric == metric and info.reference == "NEWS2"
        assert f"(NEWS2 {score})" in info.label  # the label states the chart's score
        assert info.direction == ("low" if value < NORMAL_MIDDLE[metric] else "high")


@pytest.mark.parametrize("metric", sorted(NEWS2_EDGES))
def test_news2_python_and_sql_agree_between_charted_values(
    con: duckdb.DuckDBPyConnection, metric: str
) -> None:
    low, high = NEWS2_EDGES[metric][0][0], NEWS2_EDGES[metric][-1][0]
    values = [round(low + i * 0.05, 2) for i in range(int((high - low) / 0.05) + 1)]
    sql_scores = sql_over(con, news2_score_sql(metric, "v"), values)
    py_scores = [cl.news2_score(metric, v) for v in values]
    assert sql_scores == py_scores


def test_news2_values_between_charted_values_round_half_up_to_the_chart() -> None:
    # the chart is in whole units (0.1 °C for temperature): a reading is rounded half-up to
    # the chart's resolution, then looked up (issue 13: 40.4 bpm scored 1, 90.4 bpm 1)
    assert cl.news2_score("heart_rate", 40.4) == 3
    assert cl.news2_score("systolic_bp", 90.4) == 3
    assert cl.news2_score("temp_c", 35.04) == 3
    assert cl.news2_score("heart_rate", 90.4) == 0
    assert cl.news2_score("heart_rate", 40.5) == 1
    assert cl.news2_score("heart_rate", 90.5) == 1
    assert cl.news2_score("temp_c", 35.05) == 1
    assert cl.news2_score("temp_c", 38.05) == 1
    assert cl.news2_score("spo2", 95.5) == 0


PARTIAL_CASES = [
    # heart_rate, spo2, systolic_bp, temp_c, expected partial NEWS2
    (70, 98, 120, 37.0, 0),
    (40, 91, 90, 35.0, 12),
    (131, 92, 220, 39.1, 3 + 2 + 3 + 2),
    (95, 94, 105, 38.5, 1 + 1 + 1 + 1),
    (115, 96, 95, 36.0, 2 + 0 + 2 + 1),
]


def test_partial_news2_python_and_sql(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE readings (i INTEGER, heart_rate DOUBLE, spo2 DOUBLE, systolic_bp DOUBLE, "
        "temp_c DOUBLE)"
    )
    insert_rows(
        con,
        "readings",
        [(i, *case[:4]) for i, case in enumerate(PARTIAL_CASES)],
    )
    sql = [
        r[0]
        for r in con.execute(f"SELECT {partial_news2_sql()} FROM readings ORDER BY i").fetchall()
    ]
    assert sql == [case[4] for case in PARTIAL_CASES]
    assert [partial_news2(*case[:4]) for case in PARTIAL_CASES] == sql


# --- ACC/AHA 2017 blood-pressure categories ---------------------------------------------------

BP_EDGES = [
    # systolic, diastolic, category
    (90, 60, "normal"),
    (119, 79, "normal"),
    (120, 79, "elevated"),
    (129, 79, "elevated"),
    (129, 60, "elevated"),
    (130, 79, "hypertension_stage_1"),
    (119, 80, "hypertension_stage_1"),
    (139, 89, "hypertension_stage_1"),
    (125, 85, "hypertension_stage_1"),
    (140, 70, "hypertension_stage_2"),
    (110, 90, "hypertension_stage_2"),
    (135, 95, "hypertension_stage_2"),
    (180, 120, "hypertension_stage_2"),
    (181, 80, "hypertensive_crisis"),
    (110, 121, "hypertensive_crisis"),
    (181, 121, "hypertensive_crisis"),
    (250, 100, "hypertensive_crisis"),
]
BP_SEVERITY = {
    "normal": cl.Severity.NONE,
    "elevated": cl.Severity.NONE,
    "hypertension_stage_1": cl.Severity.LOW,
    "hypertension_stage_2": cl.Severity.MEDIUM,
    "hypertensive_crisis": cl.Severity.HIGH,
}


@pytest.mark.parametrize(("sbp", "dbp", "name"), BP_EDGES)
def test_bp_category_edges_in_python(sbp: float, dbp: float, name: str) -> None:
    category = cl.bp_category(sbp, dbp)
    assert category.name == name
    assert category.severity is BP_SEVERITY[name]


def test_bp_category_edges_in_sql_agree(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE r (i INTEGER, systolic_bp DOUBLE, diastolic_bp DOUBLE)")
    values = [(i, s, d) for i, (s, d, _) in enumerate(BP_EDGES)]
    insert_rows(con, "r", values)
    rows = con.execute(
        f"SELECT kind, {bp_severity_sql('kind')} FROM (SELECT i, {bp_category_sql()} AS kind "
        "FROM r) ORDER BY i"
    ).fetchall()
    assert [r[0] for r in rows] == [name for _, _, name in BP_EDGES]
    assert [r[1] for r in rows] == [int(BP_SEVERITY[name]) for _, _, name in BP_EDGES]


def test_bp_python_and_sql_agree_on_a_grid(con: duckdb.DuckDBPyConnection) -> None:
    grid: list[tuple[float, float]] = [
        (s, d) for s in range(100, 200, 3) for d in range(50, 130, 3)
    ]
    grid += [(s + 0.5, d + 0.5) for s, d in grid[::7]]
    con.execute("CREATE TABLE r (i INTEGER, systolic_bp DOUBLE, diastolic_bp DOUBLE)")
    insert_rows(con, "r", [(i, s, d) for i, (s, d) in enumerate(grid)])
    sql = [r[0] for r in con.execute(f"SELECT {bp_category_sql()} FROM r ORDER BY i").fetchall()]
    assert sql == [cl.bp_category(s, d).name for s, d in grid]


def test_clinical_anomalies_flag_a_crisis_reading_once(con: duckdb.DuckDBPyConnection) -> None:
    """systolic ≥ 220 is NEWS2 3 *and* a hypertensive crisis: reported once, as the crisis."""
    con.execute(
        "CREATE TABLE readings AS SELECT * FROM (VALUES "
        "(1, 'a', TIMESTAMPTZ '2025-01-01 00:00:00+00', 1, 70.0, 98.0, 230.0, 100.0, 37.0), "
        "(2, 'a', TIMESTAMPTZ '2025-01-01 00:01:00+00', 2, 70.0, 98.0, 115.0, 75.0, 37.0), "
        "(3, 'a', TIMESTAMPTZ '2025-01-01 00:02:00+00', 3, 35.0, 88.0, 85.0, 55.0, 39.5)) "
        "AS t(source_row, user_id, event_time, ord, heart_rate, spo2, systolic_bp, "
        "diastolic_bp, temp_c)"
    )
    rows = con.execute(
        "SELECT source_row, metric, kind, severity, rule "
        f"FROM ({clinical_anomalies_sql('readings')}) ORDER BY source_row, metric"
    ).fetchall()
    assert rows == [
        (1, "blood_pressure", "hypertensive_crisis", 3, "acc_aha"),
        (3, "heart_rate", "bradycardia_news2_3", 3, "news2"),
        (3, "spo2", "low_spo2_news2_3", 3, "news2"),
        (3, "systolic_bp", "low_systolic_bp_news2_3", 3, "news2"),
        (3, "temp_c", "fever_news2_2", 2, "news2"),
    ]


# --- issue 13: chart resolution, wording, BP pair --------------------------------------------


@pytest.mark.parametrize(
    ("metric", "value", "score"),
    [("heart_rate", 40.4, 3), ("systolic_bp", 90.4, 3), ("temp_c", 35.04, 3),
     ("heart_rate", 90.4, 0), ("temp_c", 35.05, 1), ("temp_c", 36.05, 0), ("temp_c", 38.05, 1),
     ("spo2", 95.5, 0), ("spo2", 91.49, 3), ("heart_rate", 130.5, 3)],
)  # fmt: skip
def test_decimals_are_scored_at_chart_resolution_in_python_and_sql(
    con: duckdb.DuckDBPyConnection, metric: str, value: float, score: int
) -> None:
    assert cl.news2_score(metric, value) == score
    assert sql_over(con, news2_score_sql(metric, "v"), [value]) == [score]


def test_half_up_is_not_bankers_rounding_nor_float_truncation() -> None:
    # Python's round(0.5) is 0 and round(35.05, 1) is 35.0 (35.05 is stored as 35.0499...)
    assert cl.chart_value("heart_rate", 90.5) == 91
    assert cl.chart_value("heart_rate", 40.5) == 41
    assert cl.chart_value("temp_c", 35.05) == 35.1
    assert cl.chart_value("temp_c", 36.95) == 37.0
    assert cl.chart_value("temp_c", 35.04) == 35.0


def test_wording_states_the_criterion_applied() -> None:
    band = cl.NEWS2_BY_METRIC["temp_c"].band_for(36.0)
    assert band.kind is not None
    assert "hypothermia" not in band.kind
    assert cl.KINDS[band.kind].label == "Low temperature (NEWS2 1)"
    assert cl.KINDS[band.kind].criterion == "temperature 35.1–36.0 °C"
    cold = cl.NEWS2_BY_METRIC["temp_c"].band_for(35.0).kind
    assert cold is not None and cl.KINDS[cold].label == "Hypothermia (NEWS2 3)"
    sbp = cl.NEWS2_BY_METRIC["systolic_bp"].band_for(105).kind
    assert sbp is not None and "hypotension" not in cl.KINDS[sbp].label.lower()
    assert cl.KINDS[sbp].label == "Low systolic BP (NEWS2 1)"
    fast = cl.NEWS2_BY_METRIC["heart_rate"].band_for(95).kind
    assert fast is not None and "tachycardia" not in cl.KINDS[fast].label.lower()
    crisis = cl.KINDS["hypertensive_crisis"].criterion
    assert crisis == "systolic above 180 and/or diastolic above 120 mmHg"
    # every kind a band can give is described
    for param in cl.NEWS2_PARAMETERS:
        for b in param.bands:
            assert b.kind is None or b.kind in cl.KINDS
    for category in cl.BP_CATEGORIES[2:]:
        assert category.name in cl.KINDS


@pytest.mark.parametrize(
    ("sbp", "dbp", "trigger"),
    [(170, 121, "diastolic"), (185, 90, "systolic"), (185, 125, "both"), (118, 95, "diastolic"),
     (150, 70, "systolic"), (145, 95, "both"), (132, 70, "systolic"), (125, 85, "diastolic"),
     (180.4, 120.4, "both"), (115, 75, None), (125, 75, None)],
)  # fmt: skip
def test_bp_trigger_names_the_part_that_reaches_the_category(
    con: duckdb.DuckDBPyConnection, sbp: float, dbp: float, trigger: str | None
) -> None:
    # 180.4/120.4 is 180/120 at chart resolution: stage 2 (not a crisis), on both parts
    assert cl.bp_trigger(sbp, dbp) == trigger
    con.execute("CREATE OR REPLACE TABLE p (systolic_bp DOUBLE, diastolic_bp DOUBLE)")
    con.execute("INSERT INTO p VALUES (?, ?)", [sbp, dbp])
    (got,) = con.execute(
        f"SELECT {bp_trigger_sql(bp_category_sql(), 'systolic_bp', 'diastolic_bp')} FROM p"
    ).fetchone() or (None,)
    assert got == trigger
